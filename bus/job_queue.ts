/**
 * The bus's own bounded priority queue of jobs waiting for a scheduler.
 *
 * @module
 */

import { BinaryHeap } from "../core/binary_heap.ts";

/** Where a job carries its place in any JobQueue (see `BinaryHeapOptions.indexKey`). */
const QUEUE_PLACE = Symbol("JobQueue place");

/** What the queue needs to know of a job: its priority and its acceptance order. */
export interface Queueable {
  /** Integer 0..10, lower = more urgent. */
  priority: number;
  /** Acceptance order: lower = accepted earlier. Unique per job, kept across requeues. */
  readonly seq: number;
}

/** Options for {@linkcode JobQueue}. */
export interface JobQueueOptions {
  /**
   * Most jobs {@linkcode JobQueue.enqueue} lets in; requeued jobs are never refused.
   * @default {100_000}
   */
  maxLength?: number;
}

/**
 * Jobs waiting in the bus: most urgent first, then first accepted first. New jobs are refused
 * beyond `maxLength`; jobs coming back (evicted, lost scheduler) always get in, in their original
 * place among equals because the order uses the job's acceptance `seq`. Jobs are identified by
 * object identity; the queue keeps its bookkeeping on each job under a hidden symbol property.
 *
 * @example
 * ```ts
 * import { JobQueue } from "./job_queue.ts";
 * const queue = new JobQueue<{ priority: number; seq: number; id: string }>({ maxLength: 2 });
 * queue.enqueue({ priority: 5, seq: 1, id: "a" });
 * queue.enqueue({ priority: 1, seq: 2, id: "b" });
 * console.log(queue.enqueue({ priority: 0, seq: 3, id: "c" })); // false: full
 * console.log(queue.pop()?.id); // b
 * ```
 */
export class JobQueue<T extends Queueable> {
  #heap = new BinaryHeap<T>((a, b) => a.priority - b.priority || a.seq - b.seq, {
    indexKey: QUEUE_PLACE,
  });
  #maxLength: number;

  /**
   * Creates a JobQueue.
   *
   * @param options See {@linkcode JobQueueOptions}.
   * @throws {RangeError} If `maxLength` is not a positive integer.
   */
  constructor(options: JobQueueOptions = {}) {
    const maxLength = options.maxLength ?? 100_000;
    if (!Number.isInteger(maxLength) || maxLength < 1) {
      throw new RangeError(
        `Cannot create JobQueue: 'maxLength' must be a positive integer, got ${maxLength}`,
      );
    }
    this.#maxLength = maxLength;
  }

  /** How many jobs wait. */
  get length(): number {
    return this.#heap.length;
  }

  /** Whether a new job would be refused. */
  get full(): boolean {
    return this.#heap.length >= this.#maxLength;
  }

  /**
   * Adds a new job unless the queue is full.
   *
   * @param job The job.
   * @returns False (and the job is not added) when the queue is full.
   */
  enqueue(job: T): boolean {
    if (this.full) return false;
    this.#heap.push(job);
    return true;
  }

  /**
   * Puts back a job that was taken out (evicted, or its scheduler was lost), even over the bound.
   *
   * @param job The job, with its original `seq`.
   */
  requeue(job: T): void {
    this.#heap.push(job);
  }

  /**
   * The next job, without taking it out.
   *
   * @returns The most urgent, earliest accepted job, or undefined when empty.
   */
  peek(): T | undefined {
    return this.#heap.peek();
  }

  /**
   * Takes out the next job.
   *
   * @returns The most urgent, earliest accepted job, or undefined when empty.
   */
  pop(): T | undefined {
    return this.#heap.pop();
  }

  /**
   * Whether a job waits here.
   *
   * @param job The job (by identity).
   * @returns True if it is in the queue.
   */
  has(job: T): boolean {
    return this.#heap.has(job);
  }

  /**
   * Takes a job out wherever it is.
   *
   * @param job The job (by identity).
   * @returns False if it was not in the queue.
   */
  remove(job: T): boolean {
    return this.#heap.remove(job);
  }

  /**
   * Changes a waiting job's priority and moves it to its new place.
   *
   * @param job The job (by identity).
   * @param priority The new priority.
   * @returns False (and nothing changes) if the job is not in the queue.
   */
  setPriority(job: T, priority: number): boolean {
    if (!this.#heap.has(job)) return false;
    job.priority = priority;
    return this.#heap.update(job);
  }

  /**
   * Counts the waiting jobs by priority (O(n), for status pages).
   *
   * @returns `{ "<priority>": count }` for each priority that has jobs.
   */
  countByPriority(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const job of this.#heap.values()) counts[job.priority] = (counts[job.priority] ?? 0) + 1;
    return counts;
  }

  /**
   * The waiting jobs in queue order (O(n log n), for status pages and tests).
   *
   * @returns A new array, next job first.
   */
  toArray(): T[] {
    return this.#heap.toArray();
  }
}
