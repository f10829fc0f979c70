/**
 * Retries of failed command jobs, as the bus runs them: the wait before each (1 s, 2 s, 4 s,
 * ... at most 60 s), the `requeued` reason that says so, and the timers of the jobs waiting.
 *
 * @module
 */

import type { Clock, TimerId } from "../core/clock.ts";

/** Longest wait before a retry, in milliseconds. */
export const MAX_RETRY_DELAY_MS = 60_000;

/**
 * The wait before retry number `retry`: 1 s, then doubled each time, at most 60 s.
 *
 * @param retry 1 for the first retry.
 * @returns Milliseconds.
 * @example
 * ```ts
 * import { retryDelayMs } from "./retry_backoff.ts";
 * console.log(retryDelayMs(1), retryDelayMs(3), retryDelayMs(10)); // 1000 4000 60000
 * ```
 */
export function retryDelayMs(retry: number): number {
  return Math.min(1000 * 2 ** (retry - 1), MAX_RETRY_DELAY_MS);
}

/** What a failed attempt reported, for {@linkcode retryReason}. */
export interface FailedAttempt {
  /** The attempt's final state. */
  state: "failed" | "timed_out";
  /** Its result (`exitCode`, `signal`), if it sent one. */
  result?: Record<string, unknown> | undefined;
  /** Its reason, if it gave one. */
  reason?: string | undefined;
}

/**
 * The `requeued` reason of a retry: `retry 1 of 2 in 1 s (exit code 3)`; the cause is the exit
 * code, the signal (`killed by SIGKILL`), `timed out`, or the attempt's reason.
 *
 * @param retry This retry's number (1 for the first).
 * @param retries How many the job allows.
 * @param attempt What the failed attempt reported.
 * @returns The reason.
 * @example
 * ```ts
 * import { retryReason } from "./retry_backoff.ts";
 * console.log(retryReason(1, 2, { state: "failed", result: { exitCode: 3, signal: null } }));
 * // retry 1 of 2 in 1 s (exit code 3)
 * ```
 */
export function retryReason(retry: number, retries: number, attempt: FailedAttempt): string {
  const { exitCode, signal } = attempt.result ?? {};
  const cause = attempt.state === "timed_out"
    ? "timed out"
    : typeof signal === "string"
    ? `killed by ${signal}`
    : typeof exitCode === "number"
    ? `exit code ${exitCode}`
    : attempt.reason ?? "failed";
  return `retry ${retry} of ${retries} in ${retryDelayMs(retry) / 1000} s (${cause})`;
}

/**
 * The jobs waiting out a retry's backoff, each with its timer.
 *
 * @example
 * ```ts
 * import { RetryBackoff } from "./retry_backoff.ts";
 * import { systemClock } from "../core/clock.ts";
 * const backoff = new RetryBackoff<string>(systemClock);
 * backoff.wait("j1", 1000, () => console.log("retry j1"));
 * console.log(backoff.has("j1"), backoff.stop("j1"), backoff.has("j1")); // true true false
 * backoff.close();
 * ```
 */
export class RetryBackoff<J> {
  #clock: Clock;
  #timers = new Map<J, TimerId>();

  /**
   * Creates an empty RetryBackoff.
   *
   * @param clock Where the timers come from.
   */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * Lets a job wait, then calls `then` (the job no longer waits by then).
   *
   * @param job The job (not already waiting).
   * @param delayMs How long.
   * @param then What to do after.
   */
  wait(job: J, delayMs: number, then: () => void): void {
    this.#timers.set(
      job,
      this.#clock.setTimeout(() => {
        this.#timers.delete(job);
        then();
      }, delayMs),
    );
  }

  /**
   * Whether a job waits.
   *
   * @param job The job.
   * @returns True while its backoff runs.
   */
  has(job: J): boolean {
    return this.#timers.has(job);
  }

  /**
   * Ends a job's wait without calling its `then`.
   *
   * @param job The job.
   * @returns False if it was not waiting.
   */
  stop(job: J): boolean {
    const timer = this.#timers.get(job);
    if (timer === undefined) return false;
    this.#clock.clearTimeout(timer);
    this.#timers.delete(job);
    return true;
  }

  /** Stops every timer (the jobs are dropped from here). Idempotent. */
  close(): void {
    for (const timer of this.#timers.values()) this.#clock.clearTimeout(timer);
    this.#timers.clear();
  }
}
