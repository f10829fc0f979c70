/**
 * Group commit with output hold: the bus's writes to its store gather in one batch per turn of
 * the event loop, and everything the bus would send because of them waits for that batch's
 * commit.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import type { CommitResult, JobStore } from "./job_store.ts";

/** Options for {@linkcode CommitGate}. */
export interface CommitGateOptions {
  /**
   * Called after each commit attempt, before the held outputs go out: the bus admits (or
   * rejects) the jobs accepted in the batch and acknowledges stored reports.
   */
  onCommit: (result: CommitResult) => void;
  /**
   * Called as each commit starts: what is owed for the batch's writes is set apart from what
   * the next batch will owe (a commit that answers with a Promise runs while writes go on).
   * @default {undefined}
   */
  onStart?: () => void;
  /**
   * After a failed commit, when to try again if nothing else writes before (ms).
   * @default {500}
   */
  retryMs?: number;
  /**
   * Where the retry timer comes from.
   * @default {systemClock}
   */
  clock?: Clock;
}

/**
 * Wraps a store: {@linkcode CommitGate.store} is the same store, but each write marks the batch
 * dirty and schedules its commit (a zero-delay timer: the writes of one turn of the event loop
 * share one commit). While
 * the batch is dirty, {@linkcode CommitGate.send} holds outputs; the commit releases them in
 * order. A failed commit releases them too (the bus keeps serving; the store keeps the writes
 * and tries them again), after `onCommit` has rejected the batch's acceptances.
 *
 * @example
 * ```ts
 * import { CommitGate } from "./commit_gate.ts";
 * import { SqliteStore } from "./sqlite_store.ts";
 * const sent: string[] = [];
 * const gate = new CommitGate(new SqliteStore({ path: ":memory:" }), {
 *   onCommit: (result) => sent.push(`commit ${result.ok}`),
 * });
 * gate.store.accept({
 *   id: "j1", owner: "p", givenId: true, payload: { priority: 3, runtime: 1 }, seq: 0, at: 1,
 * });
 * gate.send(() => sent.push("accepted j1"));
 * console.log(gate.dirty, sent); // true []
 * await new Promise((resolve) => setTimeout(resolve, 0));
 * console.log(sent); // ["commit true", "accepted j1"]
 * gate.close();
 * gate.store.close();
 * ```
 */
export class CommitGate {
  /** The store, wrapped: every write marks the batch dirty. */
  readonly store: JobStore;
  #inner: JobStore;
  #dirty = false;
  #scheduled: ReturnType<typeof setTimeout> | undefined;
  #held: (() => void)[] = [];
  #onCommit: (result: CommitResult) => void;
  #onStart: () => void;
  #retryMs: number;
  #clock: Clock;
  #retry: TimerId | undefined;
  #closed = false;
  #lastResult: CommitResult | undefined;
  /** A commit that answered with a Promise has not settled yet. */
  #inFlight = false;
  /** A flush was asked for while one was in flight. */
  #again = false;

  /**
   * Creates the gate.
   *
   * @param store The store to commit.
   * @param options See {@linkcode CommitGateOptions}.
   */
  constructor(store: JobStore, options: CommitGateOptions) {
    this.#inner = store;
    this.#onCommit = options.onCommit;
    this.#onStart = options.onStart ?? (() => {});
    this.#retryMs = options.retryMs ?? 500;
    this.#clock = options.clock ?? systemClock;
    this.store = trackWrites(store, () => this.#touch());
  }

  /** Whether writes wait for their commit (outputs are held meanwhile). */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** Whether a commit answered with a Promise that has not settled yet. */
  get committing(): boolean {
    return this.#inFlight;
  }

  /** The last commit's result (undefined before the first). */
  get lastResult(): CommitResult | undefined {
    return this.#lastResult;
  }

  /**
   * Sends an output now, or after the commit of the writes before it.
   *
   * @param output What sends it.
   */
  send(output: () => void): void {
    if (this.#dirty || this.#inFlight) this.#held.push(output);
    else output();
  }

  /**
   * Makes sure a commit runs at the end of this turn of the event loop even without writes
   * (for `onCommit`): a macrotask, so that every message read meanwhile — a socket delivers one
   * frame per read — joins the same batch.
   */
  schedule(): void {
    if (this.#scheduled !== undefined || this.#closed) return;
    this.#scheduled = setTimeout(() => this.flush(), 0);
  }

  /**
   * Commits now (normally by the scheduled timer); releases the held outputs. A
   * store whose `commit()` answers with a Promise is awaited: outputs sent meanwhile wait for
   * the next batch, and the next commit starts only after this one ended.
   */
  flush(): void {
    clearTimeout(this.#scheduled);
    this.#scheduled = undefined;
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    if (this.#retry !== undefined) this.#clock.clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#onStart();
    const result = this.#inner.commit();
    this.#dirty = false;
    const held = this.#held;
    this.#held = [];
    if (result instanceof Promise) {
      this.#inFlight = true;
      result.then((settled) => {
        this.#inFlight = false;
        this.#settle(settled, held);
        if ((this.#again || this.#dirty) && !this.#closed) {
          this.#again = false;
          this.flush();
        } else if (!this.#dirty) {
          const late = this.#held;
          this.#held = [];
          for (const output of late) output();
        }
      });
      return;
    }
    this.#settle(result, held);
  }

  #settle(result: CommitResult, held: (() => void)[]): void {
    this.#lastResult = result;
    this.#onCommit(result);
    for (const output of held) output();
    if (!result.ok && !this.#closed) {
      if (this.#retry !== undefined) this.#clock.clearTimeout(this.#retry);
      this.#retry = this.#clock.setTimeout(() => {
        this.#retry = undefined;
        this.flush();
      }, this.#retryMs);
    }
  }

  /** Stops the retry timer; later writes are no longer committed by the gate. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#scheduled);
    this.#scheduled = undefined;
    if (this.#retry !== undefined) this.#clock.clearTimeout(this.#retry);
    this.#retry = undefined;
  }

  #touch(): void {
    this.#dirty = true;
    this.schedule();
  }
}

/** The store with `onWrite` called before each write. */
function trackWrites(store: JobStore, onWrite: () => void): JobStore {
  return {
    get lastSeq() {
      return store.lastSeq;
    },
    get firstSeq() {
      return store.firstSeq;
    },
    get lastJobSeq() {
      return store.lastJobSeq;
    },
    ...(store.assignsJobSeq ? { assignsJobSeq: true } : {}),
    accept: (job) => {
      onWrite();
      store.accept(job);
    },
    event: (event) => {
      onWrite();
      return store.event(event);
    },
    dispatched: (id, scheduler, attempt) => {
      onWrite();
      store.dispatched(id, scheduler, attempt);
    },
    setPriority: (id, priority) => {
      onWrite();
      store.setPriority(id, priority);
    },
    retried: (id, failures, lastResult) => {
      onWrite();
      store.retried(id, failures, lastResult);
    },
    prune: (now) => {
      onWrite();
      return store.prune(now);
    },
    commit: () => store.commit(),
    get: (id) => store.get(id),
    unfinished: () => store.unfinished(),
    list: (query, waiting) => store.list(query, waiting),
    show: (id, waiting) => store.show(id, waiting),
    eventsAfter: (after, owner, limit) => store.eventsAfter(after, owner, limit),
    stats: () => store.stats(),
    close: () => store.close(),
  };
}
