import { useId } from "preact/hooks";
import { CRL_REASONS } from "../api";
import { reasonLabel } from "../format";

/** A labelled <select> of CRL reason names. */
export function ReasonSelect(props: { value: string; onChange(v: string): void; label?: string; allowDefault?: string }) {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{props.label ?? "Reason"}</label>
      <select id={id} value={props.value} onChange={(e) => props.onChange((e.currentTarget as HTMLSelectElement).value)}>
        {props.allowDefault !== undefined && <option value="">{props.allowDefault}</option>}
        {CRL_REASONS.map((r) => (
          <option value={r} key={r}>
            {reasonLabel(r)} ({r})
          </option>
        ))}
      </select>
    </div>
  );
}
