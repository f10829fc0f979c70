/**
 * A controllable clock for tests: time moves only when the test says so.
 *
 * @module
 */

import type { Clock, TimerId } from "../core/clock.ts";

interface FakeTimer {
  at: number;
  seq: number;
  callback: () => void;
}

/**
 * A {@linkcode Clock} whose time moves only through {@linkcode FakeClock.tick}. Timers fire in
 * time order (then in the order they were set); after each one, pending promise callbacks are
 * let run, so that code reacting to a timer settles before the next one fires.
 *
 * @example
 * ```ts
 * import { FakeClock } from "./fake_clock.ts";
 * const clock = new FakeClock();
 * let fired = false;
 * clock.setTimeout(() => fired = true, 100);
 * await clock.tick(99);
 * console.log(fired); // false
 * await clock.tick(1);
 * console.log(fired); // true
 * ```
 */
export class FakeClock implements Clock {
  #now: number;
  #timers = new Map<number, FakeTimer>();
  #nextId = 1;
  #seq = 0;

  /** @param start The initial time, in milliseconds since the epoch. */
  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  /** The current fake time. */
  now(): number {
    return this.#now;
  }

  /** Sets a fake timer. */
  setTimeout(callback: () => void, delayMs: number): number {
    const id = this.#nextId++;
    const delay = Number.isFinite(delayMs) ? Math.max(0, delayMs) : 0;
    this.#timers.set(id, { at: this.#now + delay, seq: this.#seq++, callback });
    return id;
  }

  /** Cancels a fake timer. */
  clearTimeout(id: TimerId): void {
    if (typeof id === "number") this.#timers.delete(id);
  }

  /** How many timers are set and not yet fired. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way, each at its own
   * time, and letting promise callbacks run after each.
   */
  async tick(ms: number): Promise<void> {
    const end = this.#now + ms;
    await flush();
    for (;;) {
      const next = this.#nextDue(end);
      if (next === undefined) break;
      const [id, timer] = next;
      this.#timers.delete(id);
      this.#now = timer.at;
      timer.callback();
      await flush();
    }
    this.#now = end;
    await flush();
  }

  #nextDue(end: number): [number, FakeTimer] | undefined {
    let best: [number, FakeTimer] | undefined;
    for (const entry of this.#timers) {
      const t = entry[1];
      if (t.at > end) continue;
      if (!best || t.at < best[1].at || (t.at === best[1].at && t.seq < best[1].seq)) best = entry;
    }
    return best;
  }
}

/** Lets every pending promise callback run (one real macrotask turn). */
export function flush(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
