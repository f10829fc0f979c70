/**
 * A per-connection message rate limit: a token bucket on an injectable clock.
 *
 * @module
 */

import { type Clock, systemClock } from "../core/clock.ts";

/**
 * What {@linkcode RateLimiter.take} decides for one message: `"ok"` (within the limit), `"drop"`
 * (over it), `"report"` (over it, and the first time in this second: tell the peer).
 */
export type RateVerdict = "ok" | "drop" | "report";

/** Options for {@linkcode RateLimiter}. */
export interface RateLimiterOptions {
  /** Messages per second, averaged (the bucket's refill rate); a positive number. */
  ratePerS: number;
  /**
   * Messages accepted at once after a quiet time (the bucket's size).
   * @default {2 * ratePerS}
   */
  burst?: number;
  /**
   * Where time comes from.
   * @default {systemClock}
   */
  clock?: Clock;
}

/**
 * A token bucket: `burst` tokens, refilled at `ratePerS` a second; each message takes one. Over
 * the limit, at most one `"report"` a second, the rest `"drop"`.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "./rate_limiter.ts";
 * const limiter = new RateLimiter({ ratePerS: 1, burst: 2 });
 * console.log(limiter.take(), limiter.take(), limiter.take(), limiter.take());
 * // ok ok report drop
 * ```
 */
export class RateLimiter {
  #rate: number;
  #burst: number;
  #clock: Clock;
  #tokens: number;
  #at: number;
  #reportedAt = -Infinity;

  /**
   * Creates a full bucket.
   *
   * @param options See {@linkcode RateLimiterOptions}.
   * @throws {RangeError} If `ratePerS` or `burst` is not a positive finite number.
   */
  constructor(options: RateLimiterOptions) {
    this.#rate = options.ratePerS;
    this.#burst = options.burst ?? 2 * options.ratePerS;
    for (const [name, value] of [["ratePerS", this.#rate], ["burst", this.#burst]] as const) {
      if (!(Number.isFinite(value) && value > 0)) {
        throw new RangeError(
          `Cannot create RateLimiter: '${name}' must be a positive number, got ${value}`,
        );
      }
    }
    this.#clock = options.clock ?? systemClock;
    this.#tokens = this.#burst;
    this.#at = this.#clock.now();
  }

  /**
   * Takes a token for one message.
   *
   * @returns `"ok"`, or `"report"`/`"drop"` over the limit (see {@linkcode RateVerdict}).
   */
  take(): RateVerdict {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate / 1000);
    this.#at = now;
    if (this.#tokens >= 1) {
      this.#tokens--;
      return "ok";
    }
    if (now - this.#reportedAt < 1000) return "drop";
    this.#reportedAt = now;
    return "report";
  }
}
