/**
 * Durations as operators write them in configuration ("90d", "24h", "1h30m")
 * and back. Everything inside the server is whole seconds.
 */

/** Seconds per unit. "m" is minutes (never months); "y" is a flat 365 days. */
const UNIT_SECONDS = { y: 365 * 86_400, w: 7 * 86_400, d: 86_400, h: 3_600, m: 60, s: 1 } as const;
type Unit = keyof typeof UNIT_SECONDS;

/** Units in the only order they may appear, largest first. */
const UNIT_ORDER = "ywdhms";

/**
 * Parses a duration into whole seconds: a non-negative integer (seconds), a
 * digit string (seconds), or number–unit parts largest unit first — `y` (365
 * days), `w`, `d`, `h`, `m` (minutes), `s` — e.g. "90d", "1h30m", "2w 3d".
 * Case and spaces between parts are ignored. Returns undefined for anything
 * else, including fractions, negatives and repeated or out-of-order units.
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const text = value.trim().toLowerCase();
  if (/^\d+$/.test(text)) return safe(Number(text));
  if (!/^(\d+\s*[ywdhms]\s*)+$/.test(text)) return undefined;
  let total = 0;
  let last = -1;
  for (const [, digits, unit] of text.matchAll(/(\d+)\s*([ywdhms])/g)) {
    const rank = UNIT_ORDER.indexOf(unit!);
    // "30m1h" or "1h1h" is almost always a typo; refusing it beats guessing.
    if (rank <= last) return undefined;
    last = rank;
    total += Number(digits) * UNIT_SECONDS[unit as Unit];
  }
  return safe(total);
}

function safe(n: number): number | undefined {
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Formats whole seconds as the shortest day/hour/minute/second string, e.g.
 * 7776000 → "90d", 5400 → "1h30m", 0 → "0s". Days are the largest unit so
 * lifetimes read the way they are usually configured ("365d", not "1y").
 * The result parses back to the same number with parseDuration.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isSafeInteger(seconds) || seconds < 0) return `${seconds}s`;
  if (seconds === 0) return "0s";
  let rest = seconds;
  let out = "";
  for (const unit of ["d", "h", "m", "s"] as const) {
    const n = Math.floor(rest / UNIT_SECONDS[unit]);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * UNIT_SECONDS[unit];
  }
  return out;
}
