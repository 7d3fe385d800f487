import type { ComponentChildren } from "preact";

/** The filter form above a list: a named search landmark that submits without leaving the page. */
export function FilterForm(props: { label: string; onSubmit?(): void; children: ComponentChildren }) {
  return (
    <form
      class="filters"
      role="search"
      aria-label={props.label}
      onSubmit={(e) => {
        e.preventDefault();
        props.onSubmit?.();
      }}
    >
      {props.children}
    </form>
  );
}

/** A FilterForm's submit button and, when `onClear` is given, "Clear filters". */
export function FilterButtons(props: { submit: string; onClear?: () => void }) {
  return (
    <>
      <button type="submit" class="primary">
        {props.submit}
      </button>
      {props.onClear && (
        <button type="button" onClick={props.onClear}>
          Clear filters
        </button>
      )}
    </>
  );
}
