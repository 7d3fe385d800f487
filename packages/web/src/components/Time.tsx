import type { ComponentChildren } from "preact";
import { dateTime, relative } from "../format";

/** A UTC time that does not wrap, with the exact instant in a tooltip. */
export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span class="muted">—</span>;
  return (
    <time dateTime={iso} class="nowrap" title={iso}>
      {dateTime(iso)}
    </time>
  );
}

/** A time over a small muted note, by default how far it is from now ("in 3 days"); `none` (muted) without a time. */
export function TimeWithNote({ iso, note, none = "—" }: { iso: string | null | undefined; note?: ComponentChildren; none?: string }) {
  if (!iso) return <span class="muted">{none}</span>;
  return (
    <>
      <Time iso={iso} />
      <br />
      <span class="muted small">{note ?? relative(iso)}</span>
    </>
  );
}
