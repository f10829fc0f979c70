/**
 * Checking a flag's value: numbers with a message that names the flag, what it takes, and what
 * it got (`--port must be an integer 0..65535, got '-1'`).
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/** Bounds for {@linkcode integerFlag}. */
export interface IntegerBounds {
  /**
   * The smallest value accepted.
   * @default {0}
   */
  min?: number;
  /**
   * The largest value accepted.
   * @default {Number.MAX_SAFE_INTEGER}
   */
  max?: number;
}

/**
 * Reads a flag's value as a whole number (digits only) within bounds.
 *
 * @param flag The flag as the user knows it, for the message: `"--port"`, `"-s"`.
 * @param text The value as given.
 * @param bounds See {@linkcode IntegerBounds}.
 * @returns The number.
 * @throws {UsageError} `--port must be an integer 0..65535, got '-1'` (or `>= 1` without a max).
 *
 * @example
 * ```ts
 * import { integerFlag } from "./flag_values.ts";
 * console.log(integerFlag("--port", "8101", { max: 65535 })); // 8101
 * ```
 */
export function integerFlag(flag: string, text: string, bounds: IntegerBounds = {}): number {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = bounds;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}..${max}`;
    throw new UsageError(`${flag} must be an integer ${range}, got '${text}'`);
  }
  return value;
}

/** Bounds for {@linkcode secondsFlag}. */
export interface SecondsBounds {
  /**
   * The smallest value accepted.
   * @default {0}
   */
  min?: number;
  /**
   * Whether `min` itself is refused (`> 0` rather than `>= 0`).
   * @default {false}
   */
  exclusive?: boolean;
}

/**
 * Reads a flag's value as a finite number of seconds (fractions allowed) at or above a minimum.
 *
 * @param flag The flag as the user knows it, for the message: `"-p/--period"`, `"-t"`.
 * @param text The value as given.
 * @param bounds See {@linkcode SecondsBounds}.
 * @returns The number of seconds.
 * @throws {UsageError} `-t must be a number of seconds > 0, got '-1'`.
 *
 * @example
 * ```ts
 * import { secondsFlag } from "./flag_values.ts";
 * console.log(secondsFlag("-t", "1.5", { exclusive: true })); // 1.5
 * ```
 */
export function secondsFlag(flag: string, text: string, bounds: SecondsBounds = {}): number {
  const { min = 0, exclusive = false } = bounds;
  const value = text.trim() === "" ? NaN : Number(text);
  if (!Number.isFinite(value) || value < min || (exclusive && value === min)) {
    throw new UsageError(
      `${flag} must be a number of seconds ${exclusive ? ">" : ">="} ${min}, got '${text}'`,
    );
  }
  return value;
}

/**
 * Reads a flag's value as the URL of a bus: `ws://` or `wss://`.
 *
 * @param flag The flag, for the message: `"--url"`.
 * @param text The value as given.
 * @returns The value, unchanged.
 * @throws {UsageError} `--url must be a ws:// or wss:// URL, got 'http://x'`.
 *
 * @example
 * ```ts
 * import { wsUrlFlag } from "./flag_values.ts";
 * console.log(wsUrlFlag("--url", "ws://127.0.0.1:8101")); // "ws://127.0.0.1:8101"
 * ```
 */
export function wsUrlFlag(flag: string, text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch { /* reported below */ }
  if ((url?.protocol !== "ws:" && url?.protocol !== "wss:") || url.host === "") {
    throw new UsageError(`${flag} must be a ws:// or wss:// URL, got '${text}'`);
  }
  return text;
}

/**
 * Reads a flag that names one bus or several (the buses of one cluster, tried in this order):
 * each value is one URL or a comma-separated list, and the flag may be repeated
 * (`--url ws://a:8101,ws://b:8101`, or `--url ws://a:8101 --url ws://b:8101`). Each URL must be
 * `ws://` or `wss://`, none empty, none twice.
 *
 * @param flag The flag, for the message: `"--url"`.
 * @param texts The value or values as given.
 * @returns The URLs, at least one, in order.
 * @throws {UsageError} For one URL, as {@linkcode wsUrlFlag} says it; for several, the one at
 * fault by its place: `--url: the 2nd URL 'http://x' is not a ws:// or wss:// URL`,
 * `--url: the 2nd URL is empty`, `--url: the 3rd URL 'ws://a:1' repeats the 1st`.
 *
 * @example
 * ```ts
 * import { wsUrlListFlag } from "./flag_values.ts";
 * console.log(wsUrlListFlag("--url", "ws://a:8101,ws://b:8101")); // [ "ws://a:8101", "ws://b:8101" ]
 * ```
 */
export function wsUrlListFlag(flag: string, texts: string | readonly string[]): string[] {
  const urls = (typeof texts === "string" ? [texts] : texts).flatMap((text) => text.split(","))
    .map((url) => url.trim());
  if (urls.length === 1) return [wsUrlFlag(flag, urls[0] ?? "")];
  if (urls.length === 0) throw new UsageError(`${flag} needs a ws:// or wss:// URL`);
  urls.forEach((url, i) => {
    const which = `${flag}: the ${ordinal(i + 1)} URL`;
    if (url === "") throw new UsageError(`${which} is empty`);
    try {
      wsUrlFlag(flag, url);
    } catch {
      throw new UsageError(`${which} '${url}' is not a ws:// or wss:// URL`);
    }
    const first = urls.indexOf(url);
    if (first < i) throw new UsageError(`${which} '${url}' repeats the ${ordinal(first + 1)}`);
  });
  return urls;
}

/** `1` → `1st`, `2` → `2nd`, `11` → `11th`, `23` → `23rd`. */
function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
  return `${n}${suffix}`;
}

/**
 * The usage row of a `--url` read by {@linkcode wsUrlListFlag}, the same in every client CLI.
 *
 * @param defaultUrl The URL used without the flag.
 * @returns `[flag, meaning]`, the meaning on three lines.
 *
 * @example
 * ```ts
 * import { wsUrlUsageRow } from "./flag_values.ts";
 * console.log(wsUrlUsageRow("ws://127.0.0.1:8101")[0]); // "--url URL[,URL…]"
 * ```
 */
export function wsUrlUsageRow(defaultUrl: string): [string, string] {
  return [
    "--url URL[,URL…]",
    `the bus, ws:// or wss:// (default ${defaultUrl});\n` +
    "several (comma-separated or repeated): buses of one cluster, tried in order,\n" +
    "the next one at once when one fails; a wait only once all failed in a row",
  ];
}
