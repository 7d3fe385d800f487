/** Display helpers. Times are shown in UTC, as the API gives them. */

const nf = new Intl.NumberFormat("en-US");

export function num(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : nf.format(n);
}

/** "2026-11-25 12:21 UTC" */
export function dateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** "2026-11-25" */
export function date(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().slice(0, 10);
}

/** "in 3 days", "2 hours ago" */
export function relative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "";
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return "";
  const diff = t - now;
  const abs = Math.abs(diff);
  const units: [number, string][] = [
    [365 * 86400e3, "year"],
    [30 * 86400e3, "month"],
    [86400e3, "day"],
    [3600e3, "hour"],
    [60e3, "minute"],
  ];
  for (const [ms, name] of units) {
    if (abs >= ms) {
      const n = Math.floor(abs / ms);
      const s = `${n} ${name}${n === 1 ? "" : "s"}`;
      return diff >= 0 ? `in ${s}` : `${s} ago`;
    }
  }
  return diff >= 0 ? "in under a minute" : "just now";
}

/** "Dec 1" for a "YYYY-MM-DD" day (UTC). */
export function shortDay(day: string): string {
  const d = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return day;
  return d.toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
}

/** "keyCompromise" → "Key compromise" */
export function reasonLabel(reason: string): string {
  const special: Record<string, string> = { cACompromise: "CA compromise", aACompromise: "AA compromise" };
  if (special[reason]) return special[reason];
  const words = reason.replace(/([A-Z])/g, " $1").trim().toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** ISO instant from an <input type="datetime-local"> value, taken as UTC. */
export function utcInputToIso(v: string): string | undefined {
  if (!v) return undefined;
  const d = new Date(`${v}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${num(n)} ${n === 1 ? one : many}`;
}
