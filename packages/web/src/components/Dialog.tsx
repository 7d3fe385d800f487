/**
 * A modal confirmation built on <dialog> (focus is kept inside, Escape
 * cancels). Errors of the action are shown inside the dialog (the page's live
 * region is inert while a modal is open) and focus returns to the control that
 * opened it.
 */
import type { ComponentChildren } from "preact";
import { useEffect, useId, useRef, useState } from "preact/hooks";
import { type ApiError, toApiError } from "../api";

export interface ConfirmDialogProps {
  title: string;
  confirmLabel: string;
  danger?: boolean;
  children?: ComponentChildren;
  /** Runs the action; the dialog closes when it resolves, shows the error when it rejects. */
  onConfirm(): Promise<void>;
  onClose(): void;
  /** Called when the dialog closes after a failed attempt (the row may have changed meanwhile: reload). */
  onStale?(): void;
  testId?: string;
}

export function ConfirmDialog(props: ConfirmDialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const failed = useRef(false);
  const close = () => {
    if (failed.current) props.onStale?.();
    props.onClose();
  };
  const onCloseRef = useRef(close);
  onCloseRef.current = close;

  useEffect(() => {
    const d = ref.current;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (d && !d.open) d.showModal();
    const cancel = (e: Event) => {
      e.preventDefault();
      onCloseRef.current();
    };
    d?.addEventListener("cancel", cancel);
    return () => {
      d?.removeEventListener("cancel", cancel);
      if (d?.open) d.close();
      // Back to the opener, or to the page heading when the row it was on is gone.
      requestAnimationFrame(() => {
        if (opener && opener.isConnected && !(opener as HTMLButtonElement).disabled) opener.focus();
        else document.querySelector<HTMLElement>("#main h1")?.focus();
      });
    };
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await props.onConfirm();
      setBusy(false);
      props.onClose();
    } catch (err) {
      setBusy(false);
      failed.current = true;
      setError(toApiError(err));
    }
  };

  return (
    <dialog ref={ref} class="dialog" aria-labelledby={titleId} data-testid={props.testId}>
      <form onSubmit={submit}>
        <h2 id={titleId}>{props.title}</h2>
        {props.children}
        <div role="alert" class="dialog-error">
          {error && (
            <p class="error-text">
              <strong>{error.code}</strong>: {error.message}
            </p>
          )}
        </div>
        <div class="actions">
          <button type="submit" class={props.danger ? "danger" : "primary"} disabled={busy}>
            {busy ? "Working…" : props.confirmLabel}
          </button>
          <button type="button" onClick={close} disabled={busy}>
            Cancel
          </button>
        </div>
      </form>
    </dialog>
  );
}
