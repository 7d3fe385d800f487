/**
 * multipart/mixed (RFC 2046 §5.1) as far as EST /serverkeygen needs it
 * (RFC 7030 §4.4.2, spec est.md §5.4): the boundary quoted or not, lines
 * ending in CRLF or LF, headers per part, bodies as bytes.
 */

/** One body part: its headers (lowercase names) and its bytes. */
export interface MimePart {
  headers: Record<string, string>;
  body: Buffer;
}

/** The boundary parameter of a multipart Content-Type (quoted or not), or undefined. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\//i.test(contentType)) return undefined;
  const m = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;"]+))/i.exec(contentType);
  if (!m) return undefined;
  const b = m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]!;
  return b === "" ? undefined : b;
}

function parseHeaders(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  // Folded lines (starting with white space) continue the previous header.
  const lines = text.split(/\r?\n/).reduce<string[]>((acc, line) => {
    if (/^[ \t]/.test(line) && acc.length > 0) acc[acc.length - 1] += " " + line.trim();
    else if (line !== "") acc.push(line);
    return acc;
  }, []);
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

/** Where every delimiter line `--boundary` starts (at the beginning of the body or of a line). */
function delimiterOffsets(body: Buffer, delimiter: Buffer): number[] {
  const out: number[] = [];
  for (let at = body.indexOf(delimiter); at !== -1; at = body.indexOf(delimiter, at + 1)) {
    if (at === 0 || body[at - 1] === 0x0a) out.push(at);
  }
  return out;
}

/**
 * Splits a multipart body into its parts; the preamble and epilogue are
 * dropped. Throws Error when no delimiter is found.
 */
export function parseMultipart(body: Buffer, boundary: string): MimePart[] {
  const delimiter = Buffer.from(`--${boundary}`, "latin1");
  const offsets = delimiterOffsets(body, delimiter);
  if (offsets.length === 0) throw new Error(`no "--${boundary}" delimiter in the body`);
  const parts: MimePart[] = [];
  for (let i = 0; i < offsets.length; i++) {
    const after = offsets[i]! + delimiter.length;
    if (body[after] === 0x2d && body[after + 1] === 0x2d) break; // close delimiter "--boundary--"
    const lineEnd = body.indexOf(0x0a, after);
    if (lineEnd === -1) break;
    const start = lineEnd + 1;
    let end = i + 1 < offsets.length ? offsets[i + 1]! : body.length;
    // The line break before the next delimiter belongs to that delimiter (RFC 2046 §5.1.1).
    if (end > start && body[end - 1] === 0x0a) end -= body[end - 2] === 0x0d && end - 2 >= start ? 2 : 1;
    const content = body.subarray(start, Math.max(start, end));
    const text = content.toString("latin1");
    const blank = /^\r?\n/.test(text) ? { index: 0, length: /^\r?\n/.exec(text)![0].length } : (() => {
      const m = /\r?\n\r?\n/.exec(text);
      return m ? { index: m.index, length: m[0].length } : undefined;
    })();
    if (!blank) {
      parts.push({ headers: parseHeaders(text), body: Buffer.alloc(0) });
      continue;
    }
    parts.push({ headers: parseHeaders(text.slice(0, blank.index)), body: Buffer.from(content.subarray(blank.index + blank.length)) });
  }
  return parts;
}
