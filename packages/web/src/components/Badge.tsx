/** A status word with a colour; the word itself carries the meaning. */
export function Badge({ value }: { value: string | null | undefined }) {
  if (!value) return <span class="muted">—</span>;
  return <span class={`badge badge-${value.replace(/[^a-z-]/gi, "")}`}>{value}</span>;
}
