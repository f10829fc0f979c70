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
