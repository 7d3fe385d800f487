/**
 * Server-Sent Events stream parser (WHATWG HTML "Parsing an event stream"):
 * lines end with CRLF, LF or CR, possibly split across chunks; `:` lines are
 * comments (keep-alives); `event`, `data`, `id` and `retry` fields build
 * events that are dispatched at each blank line.
 */

/** One dispatched event. */
export interface SseEvent {
  /** The `event:` field, "message" when absent. */
  type: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The last event ID in force when the event was dispatched ("" if none yet). */
  lastEventId: string;
}

/** Feeds text chunks in, calls back with each complete event. */
export class SseParser {
  /** The last event ID seen (the value to send as Last-Event-ID on reconnect). */
  lastEventId = "";
  private buffer = "";
  private data: string[] = [];
  private type = "";
  private idBuffer: string;
  private started = false;
  private skipLf = false;

  /**
   * @param onEvent called for each event with data.
   * @param onRetry called with a `retry:` field's reconnection time in milliseconds.
   * @param lastEventId the ID to start from (e.g. kept from an earlier connection).
   */
  constructor(
    private readonly onEvent: (event: SseEvent) => void,
    private readonly onRetry?: (ms: number) => void,
    lastEventId = "",
  ) {
    this.lastEventId = lastEventId;
    this.idBuffer = lastEventId;
  }

  /** Parses a chunk of decoded text (decode UTF-8 with a streaming decoder so characters split across chunks survive). */
  push(chunk: string): void {
    let text = chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    // A CR that ended the previous chunk may be the first half of a CRLF.
    if (this.skipLf && text.startsWith("\n")) text = text.slice(1);
    this.skipLf = false;
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(this.buffer.slice(start, i));
      if (c === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else this.skipLf = true;
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  /** Resets per-connection state (a partial line or event is dropped, as on a reconnect); the last event ID is kept. */
  reset(): void {
    this.buffer = "";
    this.data = [];
    this.type = "";
    this.idBuffer = this.lastEventId;
    this.started = false;
    this.skipLf = false;
  }

  private line(line: string): void {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.type = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.idBuffer = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.onRetry?.(Number(value));
        break;
      default:
      // unknown fields are ignored
    }
  }

  private dispatch(): void {
    this.lastEventId = this.idBuffer;
    const data = this.data;
    const type = this.type || "message";
    this.data = [];
    this.type = "";
    if (data.length === 0) return;
    this.onEvent({ type, data: data.join("\n"), lastEventId: this.lastEventId });
  }
}
