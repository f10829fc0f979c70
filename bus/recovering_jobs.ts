/**
 * The jobs a restarted bus found at schedulers: each stays assigned to its scheduler's name
 * until a scheduler of that name registers again (and says which of them it still has) or a
 * grace period ends.
 *
 * @module
 */

import type { Clock, TimerId } from "../core/clock.ts";

/**
 * Jobs waiting for their scheduler to come back, by scheduler name, with one grace timer.
 *
 * @typeParam J The job type.
 * @example
 * ```ts
 * import { RecoveringJobs } from "./recovering_jobs.ts";
 * import { systemClock } from "../core/clock.ts";
 * const expired: string[][] = [];
 * const jobs = new RecoveringJobs<string>(systemClock, (left) => expired.push(left));
 * jobs.add("node-a", "j1");
 * jobs.add("node-a", "j2");
 * console.log(jobs.take("node-a", "j1"), jobs.rest("node-a")); // true ["j2"]
 * jobs.close();
 * ```
 */
export class RecoveringJobs<J> {
  #byName = new Map<string, Set<J>>();
  #clock: Clock;
  #onExpire: (jobs: J[]) => void;
  #timer: TimerId | undefined;

  /**
   * Creates an empty set.
   *
   * @param clock Where time comes from.
   * @param onExpire Called with the jobs still waiting when the grace period ends.
   */
  constructor(clock: Clock, onExpire: (jobs: J[]) => void) {
    this.#clock = clock;
    this.#onExpire = onExpire;
  }

  /** How many jobs wait for their scheduler. */
  get size(): number {
    let size = 0;
    for (const jobs of this.#byName.values()) size += jobs.size;
    return size;
  }

  /** The scheduler names waited for, with how many jobs each. */
  counts(): Record<string, number> {
    return Object.fromEntries([...this.#byName].map(([name, jobs]) => [name, jobs.size]));
  }

  /**
   * Adds a job found at a scheduler.
   *
   * @param name The scheduler's name.
   * @param job The job.
   */
  add(name: string, job: J): void {
    const jobs = this.#byName.get(name) ?? new Set();
    this.#byName.set(name, jobs.add(job));
  }

  /**
   * Starts the grace period (once; later calls do nothing).
   *
   * @param ms How long to wait for the schedulers.
   */
  startGrace(ms: number): void {
    if (this.#timer !== undefined || this.#byName.size === 0) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      const left = [...this.#byName.values()].flatMap((jobs) => [...jobs]);
      this.#byName.clear();
      if (left.length > 0) this.#onExpire(left);
    }, ms);
  }

  /**
   * Takes a job back for its scheduler, if it waits for a scheduler of that name.
   *
   * @param name The registering scheduler's name.
   * @param job The job it says it has.
   * @returns Whether the job waited for that scheduler (it no longer does).
   */
  take(name: string, job: J): boolean {
    const jobs = this.#byName.get(name);
    if (!jobs?.delete(job)) return false;
    if (jobs.size === 0) this.#forget(name);
    return true;
  }

  /**
   * Removes a job wherever it waits (cancelled meanwhile).
   *
   * @param job The job.
   * @returns Whether it waited.
   */
  remove(job: J): boolean {
    for (const [name, jobs] of this.#byName) {
      if (!jobs.delete(job)) continue;
      if (jobs.size === 0) this.#forget(name);
      return true;
    }
    return false;
  }

  /**
   * The jobs still waiting for a scheduler of this name, which no longer waits for them (it
   * came back without them).
   *
   * @param name The scheduler's name.
   * @returns The jobs it did not take back.
   */
  rest(name: string): J[] {
    const jobs = this.#byName.get(name);
    if (!jobs) return [];
    this.#forget(name);
    return [...jobs];
  }

  /** Stops the grace timer (the jobs stay). Idempotent. */
  close(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #forget(name: string): void {
    this.#byName.delete(name);
    if (this.#byName.size === 0) this.close();
  }
}
