/**
 * An interruptible sleep.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "./clock.ts";

/** Options of {@linkcode sleep}. */
export interface SleepOptions {
  /**
   * The clock whose timer ends the sleep (a test's fake clock).
   * @default {systemClock}
   */
  clock?: Clock | undefined;
}

/**
 * Sleeps `ms` milliseconds, or less if `signal` aborts first. Unlike `@std/async`'s `delay`
 * it never rejects: callers use it to wait "until the next tick or a stop", and check the
 * signal afterwards.
 *
 * @param ms How long to sleep, in milliseconds.
 * @param signal Ends the sleep early when aborted.
 * @param options The clock to sleep on.
 * @returns A promise that resolves after `ms`, or as soon as `signal` aborts.
 *
 * @example
 * ```ts
 * import { sleep } from "./sleep.ts";
 * await sleep(5);
 * await sleep(60_000, AbortSignal.abort()); // resolves at once
 * ```
 */
export function sleep(
  ms: number,
  signal?: AbortSignal,
  options: SleepOptions = {},
): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  const clock = options.clock ?? systemClock;
  return new Promise((resolve) => {
    const done = (): void => {
      clock.clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer: TimerId = clock.setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
