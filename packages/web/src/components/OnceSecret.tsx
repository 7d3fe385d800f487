/**
 * Shows freshly created secret material once (a build secret, an EST
 * password, a bootstrap certificate and its key) with copy and download.
 */
import { useEffect, useId, useRef } from "preact/hooks";
import { ApiError } from "../api";
import { useApp } from "../state";

export interface SecretItem {
  label: string;
  value: string;
  filename: string;
  mime?: string;
}

export async function copyText(text: string, fallbackEl?: HTMLTextAreaElement | HTMLInputElement | null): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the selection way
  }
  if (fallbackEl) {
    fallbackEl.focus();
    fallbackEl.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
  return false;
}

export function download(filename: string, text: string, mime = "text/plain"): void {
  const url = URL.createObjectURL(new Blob([text], { type: mime }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.rel = "noopener";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function SecretRow({ item }: { item: SecretItem }) {
  const id = useId();
  const ref = useRef<HTMLTextAreaElement>(null);
  const { notifySuccess, notifyError } = useApp();
  const lines = Math.min(12, item.value.split("\n").length + (item.value.length > 80 ? 1 : 0));
  return (
    <div class="secret-row">
      <label for={id}>{item.label}</label>
      <textarea id={id} ref={ref} readOnly rows={Math.max(1, lines)} class="mono" value={item.value} spellcheck={false} />
      <div class="actions">
        <button
          type="button"
          onClick={async () => {
            if (await copyText(item.value, ref.current)) notifySuccess(`${item.label} copied to the clipboard.`);
            else notifyError(new ApiError(0, "TESSERA_CONSOLE_COPY", "The browser did not allow copying; select the text and copy it by hand."));
          }}
        >
          Copy {item.label}
        </button>
        <button type="button" onClick={() => download(item.filename, item.value, item.mime)}>
          Download {item.label}
        </button>
      </div>
    </div>
  );
}

/** The "shown once" panel; it takes focus so screen reader users land on it. */
export function OnceSecret(props: { title: string; note: string; items: SecretItem[]; onDismiss(): void }) {
  const headId = useId();
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return (
    <section class="once" aria-labelledby={headId} data-testid="shown-once">
      <h3 id={headId} ref={ref} tabIndex={-1}>
        {props.title}
      </h3>
      <p class="warning">{props.note}</p>
      {props.items.map((it) => (
        <SecretRow item={it} key={it.label} />
      ))}
      <button type="button" onClick={props.onDismiss}>
        I have stored it, hide it
      </button>
    </section>
  );
}
