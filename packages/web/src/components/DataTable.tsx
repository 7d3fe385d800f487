import type { ComponentChildren, VNode } from "preact";

/**
 * A column header: a name (rendered as `<th scope="col">`), or a header cell
 * of its own (a SortHeader, a numeric column); false or null leaves it out.
 */
export type Column = string | VNode | false | null | undefined;

export interface DataTableProps {
  testId: string;
  columns: Column[];
  /** The rows of the body. */
  children: ComponentChildren;
  /** A caption for assistive technology only (the page's heading is the visible one). */
  caption?: string;
  /** Names the table by an element instead of a caption. */
  labelledBy?: string;
  /** Set while the rows are (re)loading: aria-busy. */
  busy?: boolean;
  /** Classes besides "data" (e.g. "compact"). */
  class?: string;
  /** In a `.table-wrap` that scrolls sideways on narrow screens (default true). */
  scroll?: boolean;
}

/** A list table: `table.data` with column headers, its rows, and the wrapper that lets it scroll. */
export function DataTable(props: DataTableProps) {
  const table = (
    <table class={props.class ? `data ${props.class}` : "data"} aria-labelledby={props.labelledBy} data-testid={props.testId} aria-busy={props.busy}>
      {props.caption !== undefined && <caption class="visually-hidden">{props.caption}</caption>}
      <thead>
        <tr>{props.columns.map((c) => (typeof c === "string" ? <th scope="col">{c}</th> : c))}</tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  );
  return props.scroll === false ? table : <div class="table-wrap">{table}</div>;
}
