/**
 * Capped exponential backoff with jitter: how long a reconnecting client waits before its
 * next attempt.
 *
 * @module
 */

/** Options for {@linkcode backoffDelay} (and the `backoff` option of `BusClient`). */
export interface BackoffOptions {
  /**
   * The cap of the first retry's delay, in milliseconds.
   * @default {100}
   */
  initialMs?: number;
  /**
   * The largest delay, in milliseconds.
   * @default {5000}
   */
  maxMs?: number;
  /**
   * How much the cap grows with each failed attempt.
   * @default {2}
   */
  factor?: number;
  /**
   * `"full"`: wait a uniformly random time between 0 and the cap, so that many clients cut off
   * at once do not come back in lockstep; `"none"`: wait exactly the cap.
   * @default {"full"}
   */
  jitter?: "full" | "none";
}

/** The backoff defaults, as used by `BusClient`. */
export const DEFAULT_BACKOFF: Readonly<Required<BackoffOptions>> = Object.freeze({
  initialMs: 100,
  maxMs: 5000,
  factor: 2,
  jitter: "full",
});

/**
 * Fills in the defaults of a {@linkcode BackoffOptions} and validates it.
 *
 * @param options The options to check.
 * @returns The options with every field set.
 * @throws {RangeError} If a delay is negative or not finite, `maxMs < initialMs`, or
 * `factor < 1`.
 * @throws {TypeError} If `jitter` is neither `"full"` nor `"none"`.
 *
 * @example
 * ```ts
 * import { resolveBackoff } from "./backoff.ts";
 * console.log(resolveBackoff({ maxMs: 1000 }).initialMs); // 100
 * ```
 */
export function resolveBackoff(options: BackoffOptions = {}): Required<BackoffOptions> {
  const resolved = { ...DEFAULT_BACKOFF, ...options };
  const { initialMs, maxMs, factor, jitter } = resolved;
  if (!Number.isFinite(initialMs) || initialMs < 0) {
    throw new RangeError(`Invalid backoff: 'initialMs' must be >= 0, got ${initialMs}`);
  }
  if (!Number.isFinite(maxMs) || maxMs < initialMs) {
    throw new RangeError(`Invalid backoff: 'maxMs' must be >= initialMs, got ${maxMs}`);
  }
  if (!Number.isFinite(factor) || factor < 1) {
    throw new RangeError(`Invalid backoff: 'factor' must be >= 1, got ${factor}`);
  }
  if (jitter !== "full" && jitter !== "none") {
    throw new TypeError(`Invalid backoff: 'jitter' must be "full" or "none", got ${jitter}`);
  }
  return resolved;
}

/**
 * The delay before retry number `attempt` (1 for the first retry): the cap is
 * `min(maxMs, initialMs * factor ** (attempt - 1))`; with full jitter the delay is uniformly
 * random in `[0, cap)`, else the cap itself.
 *
 * @param attempt The retry number, from 1.
 * @param options The backoff parameters, see {@linkcode BackoffOptions}.
 * @param random A source of uniform numbers in `[0, 1)`.
 * @returns The delay in whole milliseconds.
 * @throws {RangeError} If `attempt` is not a positive integer, or the options are invalid.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./backoff.ts";
 * console.log(backoffDelay(3, { jitter: "none" })); // 400
 * console.log(backoffDelay(30, { jitter: "none" })); // 5000
 * console.log(backoffDelay(3, {}, () => 0.5)); // 200
 * ```
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`Invalid backoff attempt: must be a positive integer, got ${attempt}`);
  }
  const { initialMs, maxMs, factor, jitter } = resolveBackoff(options);
  const cap = Math.min(maxMs, initialMs * factor ** (attempt - 1));
  return Math.floor(jitter === "full" ? random() * cap : cap);
}
