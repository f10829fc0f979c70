/**
 * A pausable countdown: the timeout clock of a job that can be suspended.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "./clock.ts";

/** Options for {@linkcode Deadline}. */
export interface DeadlineOptions {
  /**
   * Where time comes from.
   * @default {systemClock}
   */
  clock?: Clock;
}

/**
 * A countdown of running time that can be paused and resumed; calls `onExpire` once when the
 * running time reaches `timeoutMs`. It starts running when constructed.
 *
 * Used by `Proc` for its timeout and by the scheduler's runner for job timeouts, so that a
 * suspended job's timeout clock stops while it is suspended.
 *
 * @example A timeout that does not count paused time
 * ```ts
 * import { Deadline } from "./deadline.ts";
 * let expired = false;
 * const deadline = new Deadline(50, () => expired = true);
 * deadline.pause(); // e.g. the job was suspended
 * console.log(deadline.paused); // true
 * deadline.resume();
 * deadline.cancel(); // the job finished first
 * console.log(expired); // false
 * ```
 */
export class Deadline implements Disposable {
  #clock: Clock;
  #onExpire: () => void;
  #timeoutMs: number;
  #usedMs = 0; // running time accumulated before the current run segment
  #segmentStart: number | undefined; // clock time the current run segment started
  #timer: TimerId | undefined;
  #state: "running" | "paused" | "expired" | "cancelled" = "running";

  /**
   * Starts a countdown of `timeoutMs` milliseconds of running time.
   *
   * @param timeoutMs Running time allowed, in milliseconds (a finite number >= 0).
   * @param onExpire Called once, from a timer, when the time is used up.
   * @param options See {@linkcode DeadlineOptions}.
   * @throws {RangeError} If `timeoutMs` is negative or not finite.
   */
  constructor(timeoutMs: number, onExpire: () => void, options: DeadlineOptions = {}) {
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
      throw new RangeError(
        `Cannot create Deadline: 'timeoutMs' must be a finite number >= 0, got ${timeoutMs}`,
      );
    }
    this.#clock = options.clock ?? systemClock;
    this.#onExpire = onExpire;
    this.#timeoutMs = timeoutMs;
    this.#run();
  }

  /** Milliseconds of running time counted so far (paused time excluded). */
  get elapsedMs(): number {
    const segment = this.#segmentStart === undefined ? 0 : this.#clock.now() - this.#segmentStart;
    return Math.min(this.#timeoutMs, this.#usedMs + segment);
  }

  /** Milliseconds of running time left before expiry. */
  get remainingMs(): number {
    return this.#timeoutMs - this.elapsedMs;
  }

  /** Whether the countdown is paused. */
  get paused(): boolean {
    return this.#state === "paused";
  }

  /** Whether the countdown ran out (and `onExpire` was called). */
  get expired(): boolean {
    return this.#state === "expired";
  }

  /** Stops counting time until {@linkcode Deadline.resume}. No effect unless running. */
  pause(): void {
    if (this.#state !== "running") return;
    this.#usedMs = this.elapsedMs;
    this.#segmentStart = undefined;
    this.#clearTimer();
    this.#state = "paused";
  }

  /** Counts time again after {@linkcode Deadline.pause}. No effect unless paused. */
  resume(): void {
    if (this.#state !== "paused") return;
    this.#state = "running";
    this.#run();
  }

  /** Stops the countdown for good; `onExpire` will not be called. Idempotent. */
  cancel(): void {
    if (this.#state === "expired" || this.#state === "cancelled") return;
    this.#clearTimer();
    this.#segmentStart = undefined;
    this.#state = "cancelled";
  }

  /** Same as {@linkcode Deadline.cancel}, for `using`. */
  [Symbol.dispose](): void {
    this.cancel();
  }

  #run(): void {
    this.#segmentStart = this.#clock.now();
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#state !== "running") return;
      if (this.remainingMs > 0) return this.#run(); // a timer that fired early: wait the rest
      this.#usedMs = this.#timeoutMs;
      this.#segmentStart = undefined;
      this.#state = "expired";
      this.#onExpire();
    }, this.#timeoutMs - this.#usedMs);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
