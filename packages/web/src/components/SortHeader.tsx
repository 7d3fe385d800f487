import type { ComponentChildren, VNode } from "preact";
import type { SortOrder } from "../api";

export interface SortHeaderProps<F extends string> {
  field: F;
  sort: F | undefined;
  order: SortOrder;
  onSort(field: F, order: SortOrder): void;
  children: ComponentChildren;
  /** Order used on the first click (dates: newest first). */
  firstOrder?: SortOrder;
}

/**
 * A column header whose button asks the server to sort; aria-sort tells
 * assistive technology the current order.
 */
export function SortHeader<F extends string>(props: SortHeaderProps<F>) {
  const active = props.sort === props.field;
  const ariaSort = active ? (props.order === "asc" ? "ascending" : "descending") : "none";
  const next: SortOrder = active ? (props.order === "asc" ? "desc" : "asc") : (props.firstOrder ?? "asc");
  return (
    <th scope="col" aria-sort={ariaSort}>
      <button type="button" class="sort" onClick={() => props.onSort(props.field, next)}>
        {props.children}
        <span class="sort-icon" aria-hidden="true">
          {active ? (props.order === "asc" ? "▲" : "▼") : "↕"}
        </span>
      </button>
    </th>
  );
}

/**
 * SortHeader bound to a table's current sort, for its columns:
 * `const col = sortColumns(sort, order, onSort)`, then `col("notAfter", "Valid until")`.
 */
export function sortColumns<F extends string>(sort: F | undefined, order: SortOrder, onSort: (field: F, order: SortOrder) => void) {
  return (field: F, label: string, firstOrder?: SortOrder): VNode => (
    <SortHeader field={field} sort={sort} order={order} onSort={onSort} firstOrder={firstOrder}>
      {label}
    </SortHeader>
  );
}
