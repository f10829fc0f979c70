/**
 * The clock abstraction: where time comes from and how timers are set, so that logic that
 * depends on time can be tested with a fake clock instead of real sleeps.
 *
 * @module
 */

/**
 * Timer handle returned by {@linkcode Clock.setTimeout}: whatever the clock's timers use (the
 * global `setTimeout` returns an object in Deno 2.9; a fake clock may use numbers).
 */
export type TimerId = ReturnType<typeof setTimeout> | number;

/**
 * A source of time and timers. {@linkcode systemClock} is the real one; tests pass a fake.
 *
 * @example Using the system clock
 * ```ts
 * import { systemClock } from "./clock.ts";
 * const id = systemClock.setTimeout(() => {}, 1000);
 * systemClock.clearTimeout(id);
 * console.log(systemClock.now() > 0); // true
 * ```
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `callback` once after `delayMs` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(callback: () => void, delayMs: number): TimerId;
  /** Cancels a timer; unknown or already fired handles are ignored. */
  clearTimeout(id: TimerId): void;
}

/**
 * The real clock: `Date.now()` and the global timers.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 * const start = systemClock.now();
 * await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 5));
 * console.log(systemClock.now() - start >= 4); // true
 * ```
 */
export const systemClock: Clock = {
  now: (): number => Date.now(),
  setTimeout: (callback: () => void, delayMs: number): TimerId => setTimeout(callback, delayMs),
  clearTimeout: (id: TimerId): void => clearTimeout(id as ReturnType<typeof setTimeout>),
};
