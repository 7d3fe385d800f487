import { useId } from "preact/hooks";
import { num } from "../format";

export const PAGE_SIZES = [25, 50, 100, 200];

export interface PagerProps {
  /** What is counted, plural ("devices"). */
  noun: string;
  total: number;
  offset: number;
  limit: number;
  onPage(offset: number, limit: number): void;
}

/** "Showing 51–100 of 100,000 devices", first/previous/next/last and rows per page. */
export function Pager({ noun, total, offset, limit, onPage }: PagerProps) {
  const sizeId = useId();
  const from = total === 0 ? 0 : offset + 1;
  const to = Math.min(offset + limit, total);
  const last = total === 0 ? 0 : Math.floor((total - 1) / limit) * limit;
  const page = Math.floor(offset / limit) + 1;
  const pages = Math.max(1, Math.ceil(total / limit));
  return (
    <nav class="pager" aria-label={`Pages of ${noun}`}>
      <p class="pager-summary" data-testid="pager-summary">
        Showing {num(from)}–{num(to)} of <strong data-testid="total">{num(total)}</strong> {noun} (page {num(page)} of {num(pages)})
      </p>
      <div class="pager-buttons">
        <button type="button" onClick={() => onPage(0, limit)} disabled={offset <= 0}>
          First page
        </button>
        <button type="button" onClick={() => onPage(Math.max(0, offset - limit), limit)} disabled={offset <= 0}>
          Previous page
        </button>
        <button type="button" onClick={() => onPage(offset + limit, limit)} disabled={offset + limit >= total}>
          Next page
        </button>
        <button type="button" onClick={() => onPage(last, limit)} disabled={offset >= last}>
          Last page
        </button>
        <label for={sizeId}>Rows per page</label>
        <select id={sizeId} value={String(limit)} onChange={(e) => onPage(0, Number((e.currentTarget as HTMLSelectElement).value))}>
          {PAGE_SIZES.map((n) => (
            <option value={String(n)} key={n}>
              {n}
            </option>
          ))}
        </select>
      </div>
    </nav>
  );
}

/** Reads offset/limit from hash params with sane bounds. */
export function pageParams(p: URLSearchParams, defaultLimit = 50): { offset: number; limit: number } {
  const limit = Number(p.get("limit"));
  const offset = Number(p.get("offset"));
  return {
    limit: PAGE_SIZES.includes(limit) ? limit : defaultLimit,
    offset: Number.isInteger(offset) && offset > 0 ? offset : 0,
  };
}
