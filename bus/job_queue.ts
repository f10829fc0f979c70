/**
 * The bus's own bounded priority queue of jobs waiting for a scheduler, split by placement class
 * so that jobs no connected scheduler can take never hold up the others.
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
export interface JobQueueOptions<T> {
  /**
   * Most jobs {@linkcode JobQueue.enqueue} lets in; requeued jobs are never refused.
   * @default {100_000}
   */
  maxLength?: number;
  /**
   * A job's placement class: jobs of one class can run on the same schedulers (the bus uses
   * the job's `requires` and the kind of its command). Each class keeps its own order.
   * @default {() => ""} one class
   */
  classOf?: (job: T) => string;
}

/** The jobs of one placement class, in queue order. */
export interface JobClass<T> {
  /** The class key ({@linkcode JobQueueOptions.classOf}). */
  readonly key: string;
  /** The class's next job. */
  readonly head: T;
  /** How many of its jobs wait. */
  readonly length: number;
}

interface ClassQueue<T> {
  key: string;
  heap: BinaryHeap<T>;
}

const order = (a: Queueable, b: Queueable): number => a.priority - b.priority || a.seq - b.seq;

/**
 * Jobs waiting in the bus: most urgent first, then first accepted first. New jobs are refused
 * beyond `maxLength`; jobs coming back (evicted, lost scheduler) always get in, in their original
 * place among equals because the order uses the job's acceptance `seq`. Jobs are identified by
 * object identity; the queue keeps its bookkeeping on each job under a hidden symbol property.
 *
 * With `classOf`, jobs are kept in one heap per placement class: {@linkcode JobQueue.classes}
 * gives each class's next job, so a dispatcher looks at one job per class and a class no
 * scheduler can take costs one look per round, whatever its length. `peek`, `pop` and `toArray`
 * still give the order across all classes.
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
  #classes = new Map<string, ClassQueue<T>>();
  #list: ClassQueue<T>[] = []; // the same classes, for loops without an iterator
  #classOf: (job: T) => string;
  #length = 0;
  #maxLength: number;

  /**
   * Creates a JobQueue.
   *
   * @param options See {@linkcode JobQueueOptions}.
   * @throws {RangeError} If `maxLength` is not a positive integer.
   */
  constructor(options: JobQueueOptions<T> = {}) {
    const maxLength = options.maxLength ?? 100_000;
    if (!Number.isInteger(maxLength) || maxLength < 1) {
      throw new RangeError(
        `Cannot create JobQueue: 'maxLength' must be a positive integer, got ${maxLength}`,
      );
    }
    this.#maxLength = maxLength;
    this.#classOf = options.classOf ?? (() => "");
  }

  /** How many jobs wait. */
  get length(): number {
    return this.#length;
  }

  /** How many placement classes have waiting jobs. */
  get classCount(): number {
    return this.#classes.size;
  }

  /** Whether a new job would be refused. */
  get full(): boolean {
    return this.#length >= this.#maxLength;
  }

  /**
   * Adds a new job unless the queue is full.
   *
   * @param job The job.
   * @returns False (and the job is not added) when the queue is full.
   */
  enqueue(job: T): boolean {
    if (this.full) return false;
    this.requeue(job);
    return true;
  }

  /**
   * Puts back a job that was taken out (evicted, or its scheduler was lost), even over the bound.
   *
   * @param job The job, with its original `seq`.
   */
  requeue(job: T): void {
    const key = this.#classOf(job);
    let queue = this.#classes.get(key);
    if (!queue) {
      queue = { key, heap: new BinaryHeap<T>(order, { indexKey: QUEUE_PLACE }) };
      this.#classes.set(key, queue);
      this.#list.push(queue);
    }
    queue.heap.push(job);
    this.#length++;
  }

  /**
   * The next job, without taking it out.
   *
   * @returns The most urgent, earliest accepted job, or undefined when empty.
   */
  peek(): T | undefined {
    return this.#best()?.heap.peek();
  }

  /**
   * Takes out the next job.
   *
   * @returns The most urgent, earliest accepted job, or undefined when empty.
   */
  pop(): T | undefined {
    const queue = this.#best();
    if (!queue) return undefined;
    const job = queue.heap.pop()!;
    this.#taken(queue);
    return job;
  }

  /**
   * Hands waiting jobs out in queue order while `deliver` takes them. A class whose next job
   * `deliver` refuses is done for this call (its later jobs are not offered); the other classes
   * go on. `deliver` must take the job out (with {@linkcode JobQueue.remove}) when it accepts.
   *
   * @param deliver Takes a job out and returns true, or returns false to leave it waiting.
   * @example
   * ```ts
   * import { JobQueue } from "./job_queue.ts";
   * type J = { priority: number; seq: number; gpu: boolean };
   * const queue = new JobQueue<J>({ classOf: (job) => job.gpu ? "gpu" : "" });
   * queue.enqueue({ priority: 0, seq: 1, gpu: true });
   * queue.enqueue({ priority: 5, seq: 2, gpu: false });
   * queue.drain((job) => !job.gpu && queue.remove(job)); // no GPU: the second goes anyway
   * console.log(queue.length); // 1
   * ```
   */
  drain(deliver: (job: T) => boolean): void {
    if (this.#list.length <= 1) { // the common case: one order, no bookkeeping
      let job: T | undefined;
      while ((job = this.#list[0]?.heap.peek()) !== undefined && deliver(job)) {
        // handed the next one out
      }
      return;
    }
    // A class whose head cannot go is left out: what deliver accepts meanwhile only ever
    // takes capacity away from the others, so it could not go later in this call either.
    const open = new Map<string, T>();
    for (const { key, heap } of this.#list) open.set(key, heap.peek()!);
    while (open.size > 0) {
      let key = "";
      let best: T | undefined;
      for (const [k, head] of open) if (!best || order(head, best) < 0) [key, best] = [k, head];
      const next = deliver(best!) ? this.#classes.get(key)?.heap.peek() : undefined;
      if (next) open.set(key, next);
      else open.delete(key);
    }
  }

  /**
   * Each placement class's next job, classes in no particular order (O(classes)).
   *
   * @returns One entry per class that has waiting jobs.
   */
  classes(): JobClass<T>[] {
    const heads: JobClass<T>[] = [];
    for (const { key, heap } of this.#classes.values()) {
      heads.push({ key, head: heap.peek()!, length: heap.length });
    }
    return heads;
  }

  /**
   * The next job of one placement class.
   *
   * @param key The class key.
   * @returns Its most urgent, earliest accepted job, or undefined if none waits.
   */
  peekClass(key: string): T | undefined {
    return this.#classes.get(key)?.heap.peek();
  }

  /**
   * Whether a job waits here.
   *
   * @param job The job (by identity).
   * @returns True if it is in the queue.
   */
  has(job: T): boolean {
    return this.#classes.get(this.#classOf(job))?.heap.has(job) ?? false;
  }

  /**
   * Takes a job out wherever it is.
   *
   * @param job The job (by identity).
   * @returns False if it was not in the queue.
   */
  remove(job: T): boolean {
    const queue = this.#classes.get(this.#classOf(job));
    if (!queue) return false;
    if (queue.heap.peek() === job) queue.heap.pop(); // the usual case: a class's next job
    else if (!queue.heap.remove(job)) return false;
    this.#taken(queue);
    return true;
  }

  /**
   * Changes a waiting job's priority and moves it to its new place.
   *
   * @param job The job (by identity).
   * @param priority The new priority.
   * @returns False (and nothing changes) if the job is not in the queue.
   */
  setPriority(job: T, priority: number): boolean {
    const heap = this.#classes.get(this.#classOf(job))?.heap;
    if (!heap?.has(job)) return false;
    job.priority = priority;
    return heap.update(job);
  }

  /**
   * Counts the waiting jobs by priority (O(n), for status pages).
   *
   * @returns `{ "<priority>": count }` for each priority that has jobs.
   */
  countByPriority(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const { heap } of this.#classes.values()) {
      for (const job of heap.values()) counts[job.priority] = (counts[job.priority] ?? 0) + 1;
    }
    return counts;
  }

  /**
   * The first `limit` waiting jobs in queue order (O(n) for a small limit: for status pages).
   *
   * @param limit How many at most.
   * @returns A new array, next job first.
   */
  first(limit: number): T[] {
    const top: T[] = []; // sorted, at most `limit` long
    if (limit <= 0) return top;
    for (const { heap } of this.#classes.values()) {
      for (const job of heap.values()) {
        if (top.length === limit && order(job, top[limit - 1]!) >= 0) continue;
        let at = top.length;
        while (at > 0 && order(job, top[at - 1]!) < 0) at--;
        top.splice(at, 0, job);
        if (top.length > limit) top.pop();
      }
    }
    return top;
  }

  /**
   * The waiting jobs in queue order (O(n log n), for status pages and tests).
   *
   * @returns A new array, next job first.
   */
  toArray(): T[] {
    const all: T[] = [];
    for (const { heap } of this.#classes.values()) for (const job of heap.values()) all.push(job);
    return all.sort(order);
  }

  /** The class whose next job is next overall. */
  #best(): ClassQueue<T> | undefined {
    const list = this.#list;
    let best = list[0];
    for (let i = 1; i < list.length; i++) {
      const queue = list[i]!;
      if (order(queue.heap.peek()!, best!.heap.peek()!) < 0) best = queue;
    }
    return best;
  }

  /** Bookkeeping after a job left `queue`: an empty class is dropped. */
  #taken(queue: ClassQueue<T>): void {
    this.#length--;
    if (queue.heap.length > 0) return;
    this.#classes.delete(queue.key);
    this.#list.splice(this.#list.indexOf(queue), 1);
  }
}
