/**
 * The time stamp that starts every log line of the CLIs.
 *
 * @module
 */

/**
 * Formats a time as local `HH:MM:SS.mmm`, the stamp of every CLI's log lines.
 *
 * @param at The time, as a `Date` or epoch milliseconds (a clock's `now()`).
 * @returns The local time of day, to the millisecond: `"14:03:07.042"`.
 *
 * @example
 * ```ts
 * import { stamp } from "./stamp.ts";
 * console.log(/^\d\d:\d\d:\d\d\.\d{3}$/.test(stamp(Date.now()))); // true
 * ```
 */
export function stamp(at: Date | number): string {
  const d = typeof at === "number" ? new Date(at) : at;
  const ms = String(d.getMilliseconds()).padStart(3, "0");
  return `${d.toTimeString().slice(0, 8)}.${ms}`;
}
