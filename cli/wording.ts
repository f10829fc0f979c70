/**
 * Words the CLIs' lines share: counts with their noun, durations in seconds.
 *
 * @module
 */

/**
 * `1 job`, `2 jobs`: a count and its noun, plural when the count is not 1.
 *
 * @param count The count.
 * @param noun The singular noun.
 * @param plural The plural, when it is not `noun + "s"`.
 * @returns `"<count> <noun or plural>"`.
 *
 * @example
 * ```ts
 * import { plural } from "./wording.ts";
 * console.log(plural(1, "job"), plural(3, "job")); // "1 job" "3 jobs"
 * ```
 */
export function plural(count: number, noun: string, plural = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : plural}`;
}

/**
 * A duration in seconds, for people: milliseconds in, `"1.25 s"` out.
 *
 * @param ms The duration in milliseconds.
 * @param digits Digits after the point.
 * @returns The seconds with `digits` decimals and the unit.
 *
 * @example
 * ```ts
 * import { seconds } from "./wording.ts";
 * console.log(seconds(10_500)); // "10.50 s"
 * ```
 */
export function seconds(ms: number, digits = 2): string {
  return `${(ms / 1000).toFixed(digits)} s`;
}
