/**
 * The runner's waiting jobs, in two orders: who gets the next free slot (priority after aging)
 * and who may claim a slot by eviction (the job's own priority).
 *
 * @module
 */

import { BinaryHeap } from "../core/binary_heap.ts";
import { MIN_PRIORITY } from "./job.ts";

/** What {@linkcode WaitingLine} needs of a job; `rank` is its own to write. */
export interface WaitingJob {
  /** The job's own priority (0 most urgent). */
  readonly priority: number;
  /** When the job was submitted (clock time, ms): aging counts from there. */
  readonly submittedAt: number;
  /** Submission order: breaks ties among equals. */
  readonly seq: number;
  /** The job's key in the free-slot order, set by the line on `push` and `reorder`. */
  rank: number;
}

/** Where a job carries its place in each heap (`BinaryHeapOptions.indexKey`). */
const NEXT_PLACE = Symbol("WaitingLine next place");
const CLAIMS_PLACE = Symbol("WaitingLine claims place");

const byRank = (a: WaitingJob, b: WaitingJob): number => a.rank - b.rank || a.seq - b.seq;
const byPriority = (a: WaitingJob, b: WaitingJob): number =>
  a.priority - b.priority || a.seq - b.seq;

/**
 * Waiting jobs, ordered for the next free slot by `(priority * agingMs + submittedAt, seq)`: the
 * order of their aged levels (see `RunnerOptions.agingMs`), without re-keying. With aging on, a
 * second heap orders them by their own priority, the order of eviction claims; without aging
 * both orders are the same and one heap serves.
 *
 * @typeParam J The job record.
 *
 * @example
 * ```ts
 * import { WaitingLine } from "./waiting_line.ts";
 * const line = new WaitingLine(1000);
 * const old = { priority: 5, submittedAt: 0, seq: 0, rank: 0 };
 * const urgent = { priority: 2, submittedAt: 3500, seq: 1, rank: 0 };
 * line.push(old);
 * line.push(urgent);
 * console.log(line.claimant() === urgent, line.pop() === old); // true true
 * ```
 */
export class WaitingLine<J extends WaitingJob> {
  #agingMs: number;
  #next: BinaryHeap<J>;
  /** By own priority; `undefined` without aging (`#next` is then that order). */
  #claims: BinaryHeap<J> | undefined;

  /**
   * Creates an empty line.
   *
   * @param agingMs Milliseconds per level of aging; `0` turns aging off.
   */
  constructor(agingMs: number) {
    this.#agingMs = agingMs;
    this.#next = new BinaryHeap<J>(byRank, { indexKey: NEXT_PLACE });
    this.#claims = agingMs > 0
      ? new BinaryHeap<J>(byPriority, { indexKey: CLAIMS_PLACE })
      : undefined;
  }

  /** Number of waiting jobs. */
  get length(): number {
    return this.#next.length;
  }

  /**
   * Whether `job` waits here.
   *
   * @param job The job.
   * @returns True if it is in the line.
   */
  has(job: J): boolean {
    return this.#next.has(job);
  }

  /**
   * Adds a job (ranked now from its priority and submission time).
   *
   * @param job A job not in the line.
   */
  push(job: J): void {
    job.rank = this.#rankOf(job);
    this.#next.push(job);
    this.#claims?.push(job);
  }

  /**
   * Takes out the job that gets the next free slot.
   *
   * @returns That job, or `undefined` if none waits.
   */
  pop(): J | undefined {
    const job = this.#next.pop();
    if (job !== undefined) this.#claims?.remove(job);
    return job;
  }

  /**
   * Takes a job out, wherever it is (no effect if it is not in the line).
   *
   * @param job The job.
   */
  remove(job: J): void {
    this.#next.remove(job);
    this.#claims?.remove(job);
  }

  /**
   * Moves a waiting job after a change of its `priority`.
   *
   * @param job A job in the line.
   */
  reorder(job: J): void {
    job.rank = this.#rankOf(job);
    this.#next.update(job);
    this.#claims?.update(job);
  }

  /**
   * The job with the strongest claim to a slot by eviction: the most urgent by its own
   * priority, first come first among equals.
   *
   * @returns That job, or `undefined` if none waits.
   */
  claimant(): J | undefined {
    return (this.#claims ?? this.#next).peek();
  }

  /**
   * The waiting jobs in the order they would get a slot. O(n log n).
   *
   * @returns A new array.
   */
  toArray(): J[] {
    return this.#next.toArray();
  }

  /**
   * A waiting job's level at `now`: its priority, improved by one every `agingMs` since it was
   * submitted, down to {@linkcode MIN_PRIORITY}.
   *
   * @param job The job.
   * @param now Clock time, ms.
   * @returns The aged level (the priority itself without aging).
   */
  agedLevel(job: J, now: number): number {
    if (this.#agingMs === 0) return job.priority;
    const aged = Math.floor((now - job.submittedAt) / this.#agingMs);
    return Math.max(MIN_PRIORITY, job.priority - aged);
  }

  #rankOf(job: J): number {
    return this.#agingMs > 0 ? job.priority * this.#agingMs + job.submittedAt : job.priority;
  }
}
