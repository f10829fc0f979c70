/**
 * The bus's `--keep-finished AGE[,N]`: how long, and how many, finished jobs the store keeps.
 *
 * @module
 */

const UNITS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Parses `AGE[,N]`: an age with a unit (`90s`, `30m`, `12h`, `7d`) and optionally a count; the
 * count alone keeps the default age of 7 days (`,5000`).
 *
 * @param text The flag's value.
 * @returns `{ ms, count }` (count 100,000 when not given), or why the text is bad.
 * @example
 * ```ts
 * import { parseKeepFinished } from "./keep_finished.ts";
 * console.log(parseKeepFinished("7d,100000")); // { ms: 604800000, count: 100000 }
 * console.log(parseKeepFinished("12h")); // { ms: 43200000, count: 100000 }
 * console.log(parseKeepFinished("soon")); // expected AGE[,N] such as 7d or 12h,5000, got "soon"
 * ```
 */
export function parseKeepFinished(text: string): { ms: number; count: number } | string {
  const match = /^\s*(?:(\d+)\s*([smhd]))?\s*(?:,\s*(\d+))?\s*$/.exec(text);
  const bad = `expected AGE[,N] such as 7d or 12h,5000, got "${text}"`;
  if (!match || (match[1] === undefined && match[3] === undefined)) return bad;
  const ms = match[1] === undefined ? 7 * UNITS.d! : Number(match[1]) * UNITS[match[2]!]!;
  const count = match[3] === undefined ? 100_000 : Number(match[3]);
  if (ms < 1000 || !Number.isSafeInteger(ms)) return `the age must be at least 1s, got "${text}"`;
  if (count < 1 || !Number.isSafeInteger(count)) {
    return `the count must be at least 1, got "${text}"`;
  }
  return { ms, count };
}
