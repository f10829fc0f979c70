/**
 * The schedulers connected to the bus as its dispatcher counts them: each one's jobs and free
 * slots (its credit), the seed schedulers' round-robin turn, and the running jobs indexed by
 * priority where a preemption victim is looked for.
 *
 * @module
 */

import { MAX_PRIORITY } from "./protocol.ts";
import { type Placement, unplacedReason } from "./placement.ts";
import type { SchedulerPeer } from "./dispatcher_types.ts";

/** What the pool needs of a job: where it runs, how urgent, since when. */
export interface PooledJob {
  /** Its current priority. */
  readonly priority: number;
  /** When it was last given to its scheduler (clock ms): the latest started is evicted first. */
  readonly startedAt: number;
  /** Acceptance order: breaks ties among equals. */
  readonly seq: number;
  /** The scheduler that has it (set by the pool). */
  scheduler: PooledScheduler<this> | undefined;
  /** Whether it is suspended at its scheduler (set by the pool): then it holds no slot. */
  suspended: boolean;
}

/** A connected scheduler in a {@linkcode SchedulerPool}. */
export interface PooledScheduler<J> {
  /** The connection. */
  readonly peer: SchedulerPeer;
  /** v2 only: the jobs given to it and not yet final or evicted. */
  readonly jobs: Set<J>;
  /** How many of them are not suspended. */
  active: number;
  /** It said `drain`: no more jobs for it, nor preemptors. */
  draining: boolean;
}

/**
 * The connected schedulers and their credits.
 *
 * @example
 * ```ts
 * import { SchedulerPool } from "./scheduler_pool.ts";
 * const pool = new SchedulerPool();
 * const peer = {
 *   client: "c1", name: "a", protocol: 2 as const, slots: 2, canSend: () => true,
 *   sendJob: () => {}, sendCancel: () => {},
 * };
 * const sched = pool.add(peer);
 * console.log(pool.freest(() => true) === sched, pool.free(sched)); // true 2
 * ```
 */
export class SchedulerPool<J extends PooledJob> {
  #scheds = new Map<string, PooledScheduler<J>>();
  #seeds: PooledScheduler<J>[] = []; // seed schedulers, in round-robin order
  #seedTurn = 0;
  // Attached, not suspended v2 jobs by priority: where victimFor looks, least urgent first.
  #activeByPriority: Set<J>[] = Array.from({ length: MAX_PRIORITY + 1 }, () => new Set<J>());

  /** How many schedulers are connected. */
  get size(): number {
    return this.#scheds.size;
  }

  /** How many of them are seed (protocol 1) schedulers. */
  get seedCount(): number {
    return this.#seeds.length;
  }

  /**
   * Adds a scheduler.
   *
   * @param peer Its connection (its `client` must not be in the pool).
   * @returns Its record.
   */
  add(peer: SchedulerPeer): PooledScheduler<J> {
    const sched: PooledScheduler<J> = { peer, jobs: new Set(), active: 0, draining: false };
    this.#scheds.set(peer.client, sched);
    if (peer.protocol === 1) this.#seeds.push(sched);
    return sched;
  }

  /**
   * Looks a scheduler up.
   *
   * @param client Its connection id.
   * @returns Its record, if connected.
   */
  get(client: string): PooledScheduler<J> | undefined {
    return this.#scheds.get(client);
  }

  /**
   * Removes a scheduler; its jobs stay attached to it for the caller to take back.
   *
   * @param client Its connection id.
   * @returns Its record, if it was there.
   */
  remove(client: string): PooledScheduler<J> | undefined {
    const sched = this.#scheds.get(client);
    if (!sched) return undefined;
    this.#scheds.delete(client);
    const seed = this.#seeds.indexOf(sched);
    if (seed >= 0) this.#seeds.splice(seed, 1);
    return sched;
  }

  /**
   * Every connected scheduler, in connection order.
   *
   * @returns Their records.
   */
  all(): PooledScheduler<J>[] {
    return [...this.#scheds.values()];
  }

  /**
   * Whether any connected scheduler passes a test.
   *
   * @param test The test.
   * @returns True at the first that does.
   */
  some(test: (sched: PooledScheduler<J>) => boolean): boolean {
    for (const sched of this.#scheds.values()) if (test(sched)) return true;
    return false;
  }

  /**
   * Why a job of this placement has nowhere to go: no scheduler connected (draining ones do
   * not count), none with the required labels, or none (with them) allowing the command.
   *
   * @param placement The job's placement.
   * @returns The reason, or undefined when some connected scheduler matches (the job waits its
   * turn).
   */
  waitingReason(placement: Placement): string | undefined {
    const live: SchedulerPeer[] = [];
    for (const sched of this.#scheds.values()) if (!sched.draining) live.push(sched.peer);
    return unplacedReason(live, placement);
  }

  /**
   * Free slots of a v2 scheduler: slots minus its jobs that are neither suspended nor final.
   *
   * @param sched The scheduler.
   * @returns The count (negative while a preemptor is on its way).
   */
  free(sched: PooledScheduler<J>): number {
    return sched.peer.slots - sched.active;
  }

  /**
   * The v2 scheduler with the most free slots that can take a frame now.
   *
   * @param canSend Whether a scheduler may take this job and can take a frame now.
   * @returns It, or undefined if none.
   */
  freest(canSend: (sched: PooledScheduler<J>) => boolean): PooledScheduler<J> | undefined {
    let best: PooledScheduler<J> | undefined;
    let bestFree = 0;
    for (const sched of this.#scheds.values()) {
      if (sched.peer.protocol !== 2 || sched.draining) continue;
      const free = this.free(sched);
      if (free > bestFree && canSend(sched)) [best, bestFree] = [sched, free];
    }
    return best;
  }

  /**
   * The next seed scheduler in round-robin order that can take a frame now; its turn passes.
   *
   * @param canSend Whether a scheduler may take this job and can take a frame now.
   * @returns It, or undefined if none.
   */
  nextSeed(canSend: (sched: PooledScheduler<J>) => boolean): PooledScheduler<J> | undefined {
    const seeds = this.#seeds;
    for (let i = 0; i < seeds.length; i++) {
      const sched = seeds[(this.#seedTurn + i) % seeds.length]!;
      if (!canSend(sched)) continue;
      this.#seedTurn = (this.#seedTurn + i + 1) % seeds.length;
      return sched;
    }
    return undefined;
  }

  /**
   * The least urgent running job anywhere (latest started, then latest accepted, among equals)
   * that `eligible` accepts, if it is less urgent than `priority`.
   *
   * @param priority The priority of the job that needs a slot.
   * @param eligible Whether a running job may be chosen.
   * @returns The victim, or undefined.
   */
  victimFor(priority: number, eligible: (job: J) => boolean): J | undefined {
    for (let p = MAX_PRIORITY; p > priority; p--) {
      let victim: J | undefined;
      for (const job of this.#activeByPriority[p]!) {
        if (!eligible(job)) continue;
        if (
          !victim || job.startedAt > victim.startedAt ||
          (job.startedAt === victim.startedAt && job.seq > victim.seq)
        ) victim = job;
      }
      if (victim) return victim;
    }
    return undefined;
  }

  /**
   * Gives a job to a v2 scheduler's set (running, not suspended).
   *
   * @param job The job.
   * @param sched The scheduler.
   */
  attach(job: J, sched: PooledScheduler<J>): void {
    job.scheduler = sched;
    job.suspended = false;
    sched.jobs.add(job);
    sched.active++;
    this.#activeByPriority[job.priority]!.add(job);
  }

  /**
   * Takes a job out of its v2 scheduler's set.
   *
   * @param job The job (no effect if it has no scheduler).
   */
  unattach(job: J): void {
    const sched = job.scheduler;
    if (!sched) return;
    this.suspend(job, true); // out of the active counts, if it was in them
    sched.jobs.delete(job);
    job.suspended = false;
    job.scheduler = undefined;
  }

  /**
   * Marks an attached job suspended or not, keeping the active counts.
   *
   * @param job The job.
   * @param suspended Its new condition.
   */
  suspend(job: J, suspended: boolean): void {
    if (job.suspended === suspended) return;
    job.suspended = suspended;
    job.scheduler!.active += suspended ? -1 : 1;
    if (suspended) this.#activeByPriority[job.priority]!.delete(job);
    else this.#activeByPriority[job.priority]!.add(job);
  }
}
