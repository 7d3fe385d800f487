import { useId } from "preact/hooks";

interface InputProps {
  label: string;
  value: string;
  onValue(v: string): void;
  hint?: string;
  type?: "text" | "search" | "password" | "number" | "datetime-local";
  placeholder?: string;
  required?: boolean;
  maxLength?: number;
  min?: number;
  step?: number;
  autoComplete?: string;
  class?: string;
}

/** A labelled text input (the label is a real <label for>). */
export function TextField({ label, value, onValue, hint, type = "text", ...rest }: InputProps) {
  const id = useId();
  const hintId = `${id}-hint`;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {/* Preact 11 types the input per `type`; the union here is fine at runtime. */}
      <input id={id} type={type as "text"} value={value} onInput={(e) => onValue((e.currentTarget as HTMLInputElement).value)} aria-describedby={hint ? hintId : undefined} {...rest} />
      {hint && (
        <span class="hint" id={hintId}>
          {hint}
        </span>
      )}
    </div>
  );
}

/** A labelled <select> of [value, label] options. */
export function SelectField(props: { label: string; value: string; options: [string, string][]; onValue(v: string): void }) {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <select id={id} value={props.value} onChange={(e) => props.onValue((e.currentTarget as HTMLSelectElement).value)}>
        {props.options.map(([v, l]) => (
          <option value={v} key={v}>
            {l}
          </option>
        ))}
      </select>
    </div>
  );
}
