/**
 * The bus's limits on connections: how many WebSockets at once, how long a new one may take to
 * register, how many messages a second each may send. {@linkcode BusServer} applies them.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import { RateLimiter } from "./rate_limiter.ts";

/** Options for {@linkcode ConnLimits} (the same names on `BusServerOptions`). */
export interface ConnLimitsOptions {
  /**
   * Most WebSocket connections at once; the next upgrade gets 503 "too many connections".
   * @default {1000}
   */
  maxConnections?: number | undefined;
  /**
   * Time a new WebSocket has to send its `register`; then it is closed with 1008.
   * @default {10_000}
   */
  registerTimeoutMs?: number | undefined;
  /**
   * Messages a second one connection may send (averaged; bursts of twice as many); beyond it
   * `error` "rate limit: N messages/s" once a second and the excess is dropped, a job_request
   * over it is rejected "rate limit".
   * @default {10_000}
   */
  maxRate?: number | undefined;
  /**
   * Where time comes from (register timeouts, rate buckets).
   * @default {systemClock}
   */
  clock?: Clock | undefined;
}

/**
 * The connection limits with their defaults checked once: admission of a new connection, the
 * registration deadline, and a rate limiter for each connection.
 *
 * @example
 * ```ts
 * import { ConnLimits } from "./conn_limits.ts";
 * const limits = new ConnLimits({ maxConnections: 2, registerTimeoutMs: 50 });
 * console.log(limits.admit(1), limits.admit(2)); // true false
 * let late = false;
 * const stop = limits.watchRegistration(() => late = true);
 * stop(); // registered in time
 * console.log(late, limits.registerTimeoutReason); // false no register within 0.05 s
 * ```
 */
export class ConnLimits {
  /** Most connections at once. */
  readonly maxConnections: number;
  /** Time to register, in milliseconds. */
  readonly registerTimeoutMs: number;
  /** Messages a second per connection. */
  readonly maxRate: number;
  #clock: Clock;

  /**
   * Creates the limits.
   *
   * @param options See {@linkcode ConnLimitsOptions}.
   * @throws {RangeError} If a limit is not a positive number (`maxConnections` an integer).
   */
  constructor(options: ConnLimitsOptions = {}) {
    this.maxConnections = options.maxConnections ?? 1000;
    this.registerTimeoutMs = options.registerTimeoutMs ?? 10_000;
    this.maxRate = options.maxRate ?? 10_000;
    this.#clock = options.clock ?? systemClock;
    const bad = !(Number.isInteger(this.maxConnections) && this.maxConnections > 0)
      ? ["maxConnections", this.maxConnections]
      : !(Number.isFinite(this.registerTimeoutMs) && this.registerTimeoutMs > 0)
      ? ["registerTimeoutMs", this.registerTimeoutMs]
      : !(Number.isFinite(this.maxRate) && this.maxRate > 0)
      ? ["maxRate", this.maxRate]
      : undefined;
    if (bad) {
      throw new RangeError(
        `Cannot create BusServer: '${bad[0]}' must be a positive number, got ${bad[1]}`,
      );
    }
  }

  /**
   * Whether one more connection may open.
   *
   * @param open How many are open now.
   * @returns True while `open` is under `maxConnections`.
   */
  admit(open: number): boolean {
    return open < this.maxConnections;
  }

  /** The close reason for a connection that did not register in time. */
  get registerTimeoutReason(): string {
    return `no register within ${this.registerTimeoutMs / 1000} s`;
  }

  /** The `error` reason sent to a connection over the rate limit. */
  get rateLimitReason(): string {
    return `rate limit: ${this.maxRate} messages/s`;
  }

  /**
   * Starts a new connection's registration deadline.
   *
   * @param onLate Called once the deadline passes.
   * @returns Stops the deadline (call it on register and on close).
   */
  watchRegistration(onLate: () => void): () => void {
    let timer: TimerId | undefined = this.#clock.setTimeout(() => {
      timer = undefined;
      onLate();
    }, this.registerTimeoutMs);
    return () => {
      if (timer !== undefined) this.#clock.clearTimeout(timer);
      timer = undefined;
    };
  }

  /**
   * A fresh rate limiter for a new connection.
   *
   * @returns A full token bucket of `2 * maxRate`, refilled at `maxRate` a second.
   */
  rateLimiter(): RateLimiter {
    return new RateLimiter({ ratePerS: this.maxRate, clock: this.#clock });
  }
}
