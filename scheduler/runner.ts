/**
 * The runner: runs jobs by priority on a fixed number of slots, with eviction, timeouts, aging
 * and a shutdown that hands back unfinished work.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import { Deadline } from "../core/deadline.ts";
import { BinaryHeap } from "../core/binary_heap.ts";
import { DuplicateJobIdError, RunnerClosedError } from "./errors.ts";
import {
  isPriority,
  JOB_STATES,
  JobEvent,
  type JobOutcome,
  type JobState,
  type JobView,
  type LaunchedJob,
  type Launcher,
  type LaunchOutcome,
  MAX_PRIORITY,
  MIN_PRIORITY,
} from "./job.ts";

/**
 * What happens to a running job evicted by a more urgent one:
 * - `requeue`: terminated, then waits again, keeping its place among equals (event `requeued`);
 * - `kill`: terminated for good (event `evicted`, final), as the seed's scheduler does;
 * - `suspend`: paused (SIGSTOP for a `Proc`), waits without a slot and is resumed when it is the
 *   most urgent waiting job and a slot frees (events `suspended`, `resumed`); its timeout clock
 *   stops meanwhile.
 */
export type EvictMode = "requeue" | "kill" | "suspend";

const EVICT_MODES: readonly EvictMode[] = ["requeue", "kill", "suspend"];

/** Options for {@linkcode Runner}. */
export interface RunnerOptions<P> {
  /** Starts a job (e.g. `procLauncher` or `sleeperLauncher()`); required. */
  launch: Launcher<P>;
  /**
   * How many jobs may run at once.
   * @default {5}
   */
  slots?: number;
  /**
   * What eviction does to the evicted job (see {@linkcode EvictMode}).
   * @default {"requeue"}
   */
  evict?: EvictMode;
  /**
   * Running time (ms, since its latest start or resume) before a job may be evicted. A waiting
   * job kept out only by this is re-evaluated by a timer as soon as a victim becomes eligible.
   * @default {0}
   */
  minRunMs?: number;
  /**
   * Aging: a waiting job's effective priority improves by one level every `agingMs` ms since it
   * was submitted, down to 0; `0` turns aging off.
   *
   * Waiting jobs are ordered by `(priority * agingMs + submittedAt, seq)`, which is exactly the
   * order of their aged levels without re-keying the heap; among jobs at the same aged level,
   * the one that reached it first goes first. For example with `agingMs: 1000`, a priority-5 job
   * submitted at t=0 (key 5000) goes before a priority-2 job submitted at t=3500 (key 5500): at
   * t=3500 the first is at level 2 since t=3000.
   *
   * Aging decides who gets the next free slot; it never takes a slot by force. Eviction compares
   * the waiting job's own `priority` with the level each running job started at (its
   * `effectivePriority`), so an aged job that won a slot is protected like a job of that level,
   * and evictions cannot ping-pong.
   * @default {0}
   */
  agingMs?: number;
  /**
   * Default running time allowed per job attempt (ms); a job past it is terminated and reported
   * `timed_out`. Suspended time does not count.
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * Where time and timers come from.
   * @default {systemClock}
   */
  clock?: Clock;
}

/** Options for {@linkcode Runner.submit}. */
export interface SubmitOptions {
  /**
   * The job's id; must not be the id of an unfinished job of this runner.
   * @default {"job-<n>", n the submission count}
   */
  id?: string;
  /**
   * Priority, an integer from 0 (most urgent) to 10.
   * @default {5}
   */
  priority?: number;
  /**
   * Running time allowed per attempt, ms.
   * @default {the runner's timeoutMs}
   */
  timeoutMs?: number;
  /**
   * Whether the job may be evicted; `false` protects it from every eviction.
   * @default {true}
   */
  preemptible?: boolean;
  /**
   * Cancels the job when aborted (as {@linkcode Runner.cancel}).
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** A runner's state for status displays, from {@linkcode Runner.snapshot}. */
export interface RunnerSnapshot<P> {
  /** Clock time of the snapshot, ms. */
  time: number;
  /** Number of slots. */
  slots: number;
  /** Jobs holding a slot, in the order they (last) started. */
  running: JobView<P>[];
  /** Waiting jobs (suspended ones included), in the order they would get a slot. */
  waiting: JobView<P>[];
}

/** One launch of a job. */
interface Attempt {
  launched: LaunchedJob | undefined;
  deadline: Deadline | undefined;
  /** Set when the runner terminated this attempt: then its end changes nothing else. */
  stopped: boolean;
  ended: boolean;
  /** Settles when a stopped attempt has ended (made by `#stop`: only those are awaited). */
  stopping: PromiseWithResolvers<void> | undefined;
}

/** Where a job record carries its place in the waiting heaps (`BinaryHeapOptions.indexKey`). */
const WAITING_PLACE = Symbol("Runner waiting place");
const CLAIMS_PLACE = Symbol("Runner claims place");

/** The runner's record of a job. */
class Job<P> {
  readonly view: JobView<P>;
  state: JobState = "queued";
  previous: JobState | undefined;
  reason: string | undefined;
  /** Waiting order key (see `RunnerOptions.agingMs`). */
  rank = 0;
  /** The level it started at: its rank among running jobs for eviction. */
  level = 0;
  /** Order of the latest start or resume (larger: more recent). */
  startSeq = 0;
  /** Clock time of the latest start or resume. */
  segmentStart = 0;
  runMs = 0;
  attempts = 0;
  code: number | null = null;
  startedAt: number | undefined;
  endedAt: number | undefined;
  attempt: Attempt | undefined;
  /** Settles when the latest attempt the runner terminated has ended. */
  stopping: Promise<void> | undefined;
  suspended = false;
  unlisten: (() => void) | undefined;
  /** Whether the job is final and its process has ended. */
  settled = false;
  /** `done`, made when first asked for (most callers never ask). */
  #done: PromiseWithResolvers<JobOutcome> | undefined;

  constructor(
    readonly id: string,
    public priority: number,
    readonly payload: P,
    readonly preemptible: boolean,
    readonly timeoutMs: number,
    readonly seq: number,
    readonly submittedAt: number,
    levelOf: (job: Job<P>) => number,
    now: () => number,
  ) {
    this.view = new LiveJobView(this, levelOf, now);
  }

  /** Settles with the outcome once the job is final and its process has ended. */
  get done(): Promise<JobOutcome> {
    if (this.settled) return Promise.resolve(outcomeOf(this));
    this.#done ??= Promise.withResolvers<JobOutcome>();
    return this.#done.promise;
  }

  /** Marks the job settled and settles `done` if anyone asked for it. */
  settle(): void {
    this.settled = true;
    this.#done?.resolve(outcomeOf(this));
  }

  /** Time not spent running, until `at`. */
  waitMsAt(at: number): number {
    return at - this.submittedAt - this.runMs;
  }
}

/** The read-only view of a {@linkcode Job} handed to callers and listeners. */
class LiveJobView<P> implements JobView<P> {
  #job: Job<P>;
  #levelOf: (job: Job<P>) => number;
  #now: () => number;

  constructor(job: Job<P>, levelOf: (job: Job<P>) => number, now: () => number) {
    this.#job = job;
    this.#levelOf = levelOf;
    this.#now = now;
  }
  get id(): string {
    return this.#job.id;
  }
  get priority(): number {
    return this.#job.priority;
  }
  get payload(): P {
    return this.#job.payload;
  }
  get attempts(): number {
    return this.#job.attempts;
  }
  get state(): JobState {
    return this.#job.state;
  }
  get previous(): JobState | undefined {
    return this.#job.previous;
  }
  get reason(): string | undefined {
    return this.#job.reason;
  }
  get effectivePriority(): number {
    return this.#levelOf(this.#job);
  }
  get preemptible(): boolean {
    return this.#job.preemptible;
  }
  get timeoutMs(): number {
    return this.#job.timeoutMs;
  }
  get seq(): number {
    return this.#job.seq;
  }
  get submittedAt(): number {
    return this.#job.submittedAt;
  }
  get startedAt(): number | undefined {
    return this.#job.startedAt;
  }
  get endedAt(): number | undefined {
    return this.#job.endedAt;
  }
  get runMs(): number {
    const job = this.#job;
    return job.runMs + (isRunning(job) ? this.#now() - job.segmentStart : 0);
  }
  get waitMs(): number {
    const job = this.#job;
    const at = job.endedAt ?? this.#now();
    return at - job.submittedAt - this.runMs;
  }
  get code(): number | null {
    return this.#job.code;
  }
  get done(): Promise<JobOutcome> {
    return this.#job.done;
  }
}

function isRunning(job: Job<unknown>): boolean {
  return job.state === "started" || job.state === "resumed";
}

function outcomeOf(job: Job<unknown>): JobOutcome {
  const endedAt = job.endedAt!;
  return {
    id: job.id,
    state: job.state,
    reason: job.reason,
    code: job.code,
    submittedAt: job.submittedAt,
    startedAt: job.startedAt,
    endedAt,
    waitMs: job.waitMsAt(endedAt),
    runMs: job.runMs,
    attempts: job.attempts,
  };
}

function newAttempt(): Attempt {
  return {
    launched: undefined,
    deadline: undefined,
    stopped: false,
    ended: false,
    stopping: undefined,
  };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function checkPriority(what: string, priority: unknown): number {
  if (!isPriority(priority)) {
    throw new RangeError(
      `${what}: 'priority' must be an integer ${MIN_PRIORITY}..${MAX_PRIORITY}, got ${
        String(priority)
      }`,
    );
  }
  return priority as number;
}

function checkMs(what: string, name: string, value: unknown, positive: boolean): number {
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < 0 || (positive && value === 0)
  ) {
    const want = positive ? "a finite number > 0" : "a finite number >= 0";
    throw new RangeError(`${what}: '${name}' must be ${want}, got ${String(value)}`);
  }
  return value;
}

/** The typed listener overloads of {@linkcode Runner}: a state's listener gets a `JobEvent`. */
export interface Runner<P> {
  /** Listens to one job state (see `JOB_STATES`). */
  addEventListener(
    type: JobState,
    listener: (event: JobEvent<P>) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Any other listener, as on every `EventTarget`. */
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Removes a listener added for a job state. */
  removeEventListener(
    type: JobState,
    listener: (event: JobEvent<P>) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  /** Any other listener, as on every `EventTarget`. */
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

/**
 * Runs jobs by priority (0 most urgent … 10) on a fixed number of slots.
 *
 * A job starts at once if a slot is free. When all slots are busy, a job strictly more urgent
 * than the least urgent running job evicts it (among those, the one that started last: least
 * work lost) and takes its slot; jobs marked `preemptible: false` and jobs that ran less than
 * `minRunMs` are never evicted. Otherwise jobs wait, and start as slots free, most urgent
 * first, first come first served among equals (a requeued job keeps its original place). Each
 * job attempt has a timeout, enforced by the runner on its clock.
 *
 * Every change of a job's state is dispatched as a {@linkcode JobEvent} whose `type` is the new
 * state (see `JOB_STATES`), once the runner's state is consistent, exactly once and in order.
 * A runner-terminated job (evicted, cancelled, timed out, requeued) changes state when the
 * runner decides; its `done` promise settles once its process has ended.
 *
 * `setPriority` on a running job changes the level it is ranked by for eviction from then on.
 *
 * @typeParam P The payload type: what the launcher needs to start a job.
 *
 * @example Two slots: the third job waits for a free one
 * ```ts
 * import { Runner } from "./runner.ts";
 * import type { JobEvent } from "./job.ts";
 * await using runner = new Runner<string>({
 *   slots: 2,
 *   launch: () => ({
 *     wait: () => Promise.resolve({ result: "success" as const, code: 0 }),
 *     terminate: () => Promise.resolve(),
 *     suspend() {},
 *     resume() {},
 *   }),
 * });
 * runner.addEventListener("started", (event: JobEvent<string>) => {
 *   console.log(`${event.job.id} started, ${event.running} running, ${event.waiting} waiting`);
 * });
 * runner.submit("a");
 * runner.submit("b");
 * const third = runner.submit("c");
 * console.log(third.state); // "queued"
 * await runner.onIdle();
 * console.log(runner.counts.succeeded); // 3
 * ```
 */
export class Runner<P> extends EventTarget implements AsyncDisposable {
  #launch: Launcher<P>;
  #slots: number;
  #evict: EvictMode;
  #minRunMs: number;
  #agingMs: number;
  #timeoutMs: number;
  #clock: Clock;

  /** Unfinished jobs by id. */
  #jobs = new Map<string, Job<P>>();
  /** Jobs holding a slot. */
  #running = new Set<Job<P>>();
  /** Waiting jobs in the order they get a free slot. */
  #waiting: BinaryHeap<Job<P>>;
  /** Waiting jobs by their own priority (the order of eviction claims); `#waiting` without aging. */
  #claims: BinaryHeap<Job<P>>;
  /** Attempts the runner terminated that have not ended yet. */
  #stopping = new Set<Attempt>();
  #seq = 0;
  #startSeq = 0;
  #counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
  #pending: JobEvent<P>[] = [];
  #flushing = false;
  #idle: Array<() => void> = [];
  #timer: TimerId | undefined;
  #closing: Promise<JobView<P>[]> | undefined;
  #levelOf = (job: Job<P>): number => this.#level(job);
  #now = (): number => this.#clock.now();

  /**
   * Creates a runner; it runs until {@linkcode Runner.close}.
   *
   * @param options See {@linkcode RunnerOptions}; `launch` is required.
   * @throws {TypeError} If `launch` is not a function or `clock` not a clock.
   * @throws {RangeError} If a number option is out of range or `evict` unknown.
   */
  constructor(options: RunnerOptions<P>) {
    super();
    const what = "Cannot create Runner";
    const o = options ?? ({} as RunnerOptions<P>);
    if (typeof o.launch !== "function") {
      throw new TypeError(`${what}: 'launch' must be a function, got ${typeof o.launch}`);
    }
    const slots = o.slots ?? 5;
    if (!Number.isInteger(slots) || slots < 1) {
      throw new RangeError(`${what}: 'slots' must be a positive integer, got ${String(slots)}`);
    }
    const evict = o.evict ?? "requeue";
    if (!EVICT_MODES.includes(evict)) {
      throw new RangeError(
        `${what}: 'evict' must be one of ${EVICT_MODES.join(", ")}, got ${String(evict)}`,
      );
    }
    const clock = o.clock ?? systemClock;
    if (
      typeof clock?.now !== "function" || typeof clock.setTimeout !== "function" ||
      typeof clock.clearTimeout !== "function"
    ) {
      throw new TypeError(`${what}: 'clock' must have now, setTimeout and clearTimeout`);
    }
    this.#launch = o.launch;
    this.#slots = slots;
    this.#evict = evict;
    this.#minRunMs = checkMs(what, "minRunMs", o.minRunMs ?? 0, false);
    this.#agingMs = checkMs(what, "agingMs", o.agingMs ?? 0, false);
    this.#timeoutMs = checkMs(what, "timeoutMs", o.timeoutMs ?? 10_000, true);
    this.#clock = clock;
    this.#waiting = new BinaryHeap<Job<P>>((a, b) => a.rank - b.rank || a.seq - b.seq, {
      indexKey: WAITING_PLACE,
    });
    this.#claims = this.#agingMs > 0
      ? new BinaryHeap<Job<P>>((a, b) => a.priority - b.priority || a.seq - b.seq, {
        indexKey: CLAIMS_PLACE,
      })
      : this.#waiting;
  }

  /** Number of slots. */
  get slots(): number {
    return this.#slots;
  }

  /** Jobs holding a slot now. */
  get running(): number {
    return this.#running.size;
  }

  /** Jobs waiting now (suspended ones included). */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Whether {@linkcode Runner.close} was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** How many times each state was entered (a copy). */
  get counts(): Record<JobState, number> {
    return { ...this.#counts };
  }

  /**
   * Submits a job: it starts at once if a slot is free or it can evict a running job, else it
   * waits.
   *
   * @param payload What the launcher needs to start the job.
   * @param options See {@linkcode SubmitOptions}.
   * @returns A live, read-only view of the job; `done` settles with its outcome.
   * @throws {RunnerClosedError} If the runner is closed.
   * @throws {DuplicateJobIdError} If an unfinished job has the same id.
   * @throws {RangeError} If `priority` or `timeoutMs` is out of range.
   * @throws {TypeError} If `id` is not a non-empty string or `preemptible` not a boolean.
   *
   * @example
   * ```ts
   * import { Runner } from "./runner.ts";
   * await using runner = new Runner<string>({
   *   launch: () => ({
   *     wait: () => Promise.resolve({ result: "success" as const, code: 0 }),
   *     terminate: () => Promise.resolve(),
   *     suspend() {},
   *     resume() {},
   *   }),
   * });
   * const job = runner.submit("hello", { id: "greet", priority: 0 });
   * console.log((await job.done).state); // "succeeded"
   * ```
   */
  submit(payload: P, options: SubmitOptions = {}): JobView<P> {
    const what = "Cannot submit job";
    const priority = checkPriority(what, options.priority ?? 5);
    const timeoutMs = checkMs(what, "timeoutMs", options.timeoutMs ?? this.#timeoutMs, true);
    const preemptible = options.preemptible ?? true;
    if (typeof preemptible !== "boolean") {
      throw new TypeError(`${what}: 'preemptible' must be a boolean, got ${typeof preemptible}`);
    }
    let id = options.id;
    if (id !== undefined && (typeof id !== "string" || id === "")) {
      throw new TypeError(`${what}: 'id' must be a non-empty string, got ${JSON.stringify(id)}`);
    }
    if (this.#closing) throw new RunnerClosedError(id);
    if (id !== undefined && this.#jobs.has(id)) throw new DuplicateJobIdError(id);
    const seq = this.#seq++;
    if (id === undefined) {
      id = `job-${seq}`;
      for (let n = 1; this.#jobs.has(id); n++) id = `job-${seq}-${n}`;
    }
    const now = this.#clock.now();
    const job = new Job<P>(
      id,
      priority,
      payload,
      preemptible,
      timeoutMs,
      seq,
      now,
      this.#levelOf,
      this.#now,
    );
    this.#jobs.set(id, job);
    this.#enqueue(job);
    this.#to(job, "queued");
    const signal = options.signal;
    if (signal?.aborted) {
      this.#cancel(job, message(signal.reason));
    } else if (signal) {
      const onAbort = (): void => void this.cancel(job.id, message(signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
      job.unlisten = () => signal.removeEventListener("abort", onAbort);
    }
    this.#settle();
    return job.view;
  }

  /**
   * Cancels an unfinished job: a waiting one leaves the queue, a running or suspended one is
   * terminated. Its state becomes `cancelled`.
   *
   * @param id The job's id.
   * @param reason Why, kept as the job's `reason`.
   * @returns `true` if the job was unfinished and is now cancelled, `false` if unknown or final.
   *
   * @example
   * ```ts
   * import { Runner } from "./runner.ts";
   * import type { LaunchOutcome } from "./job.ts";
   * const launch = () => { // jobs that run until terminated
   *   const end = Promise.withResolvers<LaunchOutcome>();
   *   const terminate = () => (end.resolve({ result: "terminated", code: null }), end.promise);
   *   return { wait: () => end.promise, terminate, suspend() {}, resume() {} };
   * };
   * await using runner = new Runner<string>({
   *   slots: 1,
   *   launch,
   * });
   * runner.submit("x", { id: "a" });
   * runner.submit("y", { id: "b" });
   * console.log(runner.cancel("b"), runner.cancel("b")); // true false
   * ```
   */
  cancel(id: string, reason?: string): boolean {
    const job = this.#jobs.get(id);
    if (job === undefined) return false;
    this.#cancel(job, reason);
    this.#settle();
    return true;
  }

  /**
   * Changes the priority of an unfinished job. A waiting job moves in the queue (O(log n)) and
   * may then evict a running job; a running job is ranked by the new priority for eviction from
   * now on (it may then be evicted).
   *
   * @param id The job's id.
   * @param priority The new priority, an integer 0..10.
   * @returns `true` if the job was unfinished, `false` if unknown or final.
   * @throws {RangeError} If `priority` is not an integer 0..10.
   *
   * @example
   * ```ts
   * import { Runner } from "./runner.ts";
   * import type { LaunchOutcome } from "./job.ts";
   * const launch = () => { // jobs that run until terminated
   *   const end = Promise.withResolvers<LaunchOutcome>();
   *   const terminate = () => (end.resolve({ result: "terminated", code: null }), end.promise);
   *   return { wait: () => end.promise, terminate, suspend() {}, resume() {} };
   * };
   * await using runner = new Runner<string>({
   *   slots: 1,
   *   launch,
   * });
   * runner.submit("x", { priority: 5 });
   * const late = runner.submit("y", { priority: 9 });
   * runner.setPriority(late.id, 1); // more urgent than the running job: evicts it
   * console.log(late.state); // "started"
   * ```
   */
  setPriority(id: string, priority: number): boolean {
    checkPriority(`Cannot set priority of job '${id}'`, priority);
    const job = this.#jobs.get(id);
    if (job === undefined) return false;
    job.priority = priority;
    if (this.#waiting.has(job)) {
      job.rank = this.#rankOf(job);
      this.#waiting.update(job);
      if (this.#claims !== this.#waiting) this.#claims.update(job);
    } else {
      job.level = priority;
    }
    this.#settle();
    return true;
  }

  /**
   * A live view of an unfinished job.
   *
   * @param id The job's id.
   * @returns The job, or `undefined` if unknown or final.
   *
   * @example
   * ```ts
   * import { Runner } from "./runner.ts";
   * import type { LaunchOutcome } from "./job.ts";
   * const launch = () => { // jobs that run until terminated
   *   const end = Promise.withResolvers<LaunchOutcome>();
   *   const terminate = () => (end.resolve({ result: "terminated", code: null }), end.promise);
   *   return { wait: () => end.promise, terminate, suspend() {}, resume() {} };
   * };
   * await using runner = new Runner<string>({
   *   launch,
   * });
   * runner.submit("x", { id: "a" });
   * console.log(runner.get("a")?.state); // "started"
   * ```
   */
  get(id: string): JobView<P> | undefined {
    return this.#jobs.get(id)?.view;
  }

  /**
   * The running and waiting jobs, for status displays. O(n log n) in the waiting jobs.
   *
   * @returns Running jobs in start order and waiting jobs in the order they would start.
   *
   * @example
   * ```ts
   * import { Runner } from "./runner.ts";
   * import type { LaunchOutcome } from "./job.ts";
   * const launch = () => { // jobs that run until terminated
   *   const end = Promise.withResolvers<LaunchOutcome>();
   *   const terminate = () => (end.resolve({ result: "terminated", code: null }), end.promise);
   *   return { wait: () => end.promise, terminate, suspend() {}, resume() {} };
   * };
   * await using runner = new Runner<string>({
   *   slots: 1,
   *   launch,
   * });
   * runner.submit("x", { priority: 5 });
   * runner.submit("y", { priority: 7 });
   * const { running, waiting } = runner.snapshot();
   * console.log(running.length, waiting[0].priority); // 1 7
   * ```
   */
  snapshot(): RunnerSnapshot<P> {
    return {
      time: this.#clock.now(),
      slots: this.#slots,
      running: [...this.#running].sort((a, b) => a.startSeq - b.startSeq).map((j) => j.view),
      waiting: this.#waiting.toArray().map((j) => j.view),
    };
  }

  /**
   * Settles when no job is running, waiting or being terminated (at once if so already).
   *
   * @returns A promise that resolves when the runner is idle.
   *
   * @example
   * ```ts
   * import { Runner } from "./runner.ts";
   * await using runner = new Runner<string>({
   *   launch: () => ({
   *     wait: () => Promise.resolve({ result: "success" as const, code: 0 }),
   *     terminate: () => Promise.resolve(),
   *     suspend() {},
   *     resume() {},
   *   }),
   * });
   * runner.submit("a");
   * runner.submit("b");
   * await runner.onIdle();
   * console.log(runner.counts.succeeded); // 2
   * ```
   */
  onIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Stops the runner: refuses new jobs, terminates running and suspended jobs and hands back
   * every job that did not finish (running, suspended, waiting), so the caller can pass them
   * elsewhere. Each handed-back job ends `cancelled` with reason `"runner closed"` (one
   * `cancelled` event each); its `done` settles once its process has ended, and this promise
   * once all of them have. Idempotent: later calls return the same promise.
   *
   * @returns The unfinished jobs, running ones first (in start order), then waiting ones (in
   *   queue order).
   *
   * @example
   * ```ts
   * import { Runner } from "./runner.ts";
   * import type { LaunchOutcome } from "./job.ts";
   * const launch = () => { // jobs that run until terminated
   *   const end = Promise.withResolvers<LaunchOutcome>();
   *   const terminate = () => (end.resolve({ result: "terminated", code: null }), end.promise);
   *   return { wait: () => end.promise, terminate, suspend() {}, resume() {} };
   * };
   * const runner = new Runner<string>({
   *   slots: 1,
   *   launch,
   * });
   * runner.submit("x", { id: "a" });
   * runner.submit("y", { id: "b" });
   * const left = await runner.close();
   * console.log(left.map((job) => job.payload)); // ["x", "y"]
   * ```
   */
  close(): Promise<JobView<P>[]> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** Same as {@linkcode Runner.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #shutdown(): Promise<JobView<P>[]> {
    this.#clearTimer();
    const left = [
      ...[...this.#running].sort((a, b) => a.startSeq - b.startSeq),
      ...this.#waiting.toArray(),
    ];
    for (const job of left) this.#cancel(job, "runner closed");
    this.#flush();
    await Promise.all([...left.map((job) => job.done), ...[...this.#stopping].map(endedOf)]);
    this.#checkIdle();
    return left.map((job) => job.view);
  }

  // ---- scheduling ----

  /** Starts what can start, evicts what must be, then dispatches events. */
  #settle(): void {
    this.#schedule();
    this.#flush();
    this.#checkIdle();
  }

  #schedule(): void {
    if (this.#closing) return;
    this.#clearTimer();
    for (;;) {
      while (this.#running.size < this.#slots && this.#waiting.length > 0) {
        const job = this.#waiting.pop()!;
        if (this.#claims !== this.#waiting) this.#claims.remove(job);
        this.#start(job);
      }
      if (this.#waiting.length === 0) return;
      const claimant = this.#claims.peek()!;
      const victim = this.#victimFor(claimant.priority);
      if (victim === undefined) return this.#armTimer(claimant.priority);
      this.#dequeue(claimant);
      this.#displace(victim, claimant);
      this.#start(claimant);
    }
  }

  /** The least urgent, most recently started running job that `priority` may evict. */
  #victimFor(priority: number): Job<P> | undefined {
    const now = this.#clock.now();
    let best: Job<P> | undefined;
    for (const job of this.#running) {
      if (!job.preemptible || job.level <= priority) continue;
      if (now - job.segmentStart < this.#minRunMs) continue;
      if (
        best === undefined || job.level > best.level ||
        (job.level === best.level && job.startSeq > best.startSeq)
      ) best = job;
    }
    return best;
  }

  /** Re-evaluates when a job `priority` could evict reaches `minRunMs`. */
  #armTimer(priority: number): void {
    if (this.#minRunMs === 0) return;
    let at = Infinity;
    for (const job of this.#running) {
      if (job.preemptible && job.level > priority) {
        at = Math.min(at, job.segmentStart + this.#minRunMs);
      }
    }
    if (at === Infinity) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#settle();
    }, at - this.#clock.now());
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #displace(victim: Job<P>, by: Job<P>): void {
    const reason = `evicted by ${by.id}`;
    if (this.#evict === "suspend") {
      const attempt = victim.attempt!;
      this.#leaveSlot(victim);
      attempt.deadline?.pause();
      try {
        attempt.launched?.suspend();
      } catch {
        // a job that cannot be paused keeps running until it is resumed or ends
      }
      victim.suspended = true;
      this.#enqueue(victim);
      this.#to(victim, "suspended", reason);
    } else if (this.#evict === "requeue") {
      this.#stop(victim);
      this.#enqueue(victim);
      this.#to(victim, "requeued", reason);
    } else {
      this.#stop(victim);
      this.#finish(victim, "evicted", reason);
    }
  }

  #start(job: Job<P>): void {
    const now = this.#clock.now();
    job.level = this.#level(job);
    job.startSeq = ++this.#startSeq;
    job.segmentStart = now;
    this.#running.add(job);
    if (job.suspended) {
      job.suspended = false;
      const attempt = job.attempt!;
      attempt.deadline?.resume();
      try {
        attempt.launched?.resume();
      } catch {
        // it ends by itself, or by its timeout
      }
      this.#to(job, "resumed");
      return;
    }
    job.startedAt ??= now;
    const attempt = newAttempt();
    job.attempt = attempt;
    this.#to(job, "started");
    if (job.stopping === undefined) return this.#launchAttempt(job, attempt);
    // requeued before its previous process ended: launch once it has
    job.stopping.then(() => {
      if (job.attempt !== attempt) return;
      this.#launchAttempt(job, attempt);
      this.#settle();
    });
  }

  #launchAttempt(job: Job<P>, attempt: Attempt): void {
    job.attempts++;
    let launched: LaunchedJob;
    try {
      launched = this.#launch(job.view);
    } catch (error) {
      return this.#ended(job, attempt, { result: "error", code: null }, message(error));
    }
    attempt.launched = launched;
    attempt.deadline = new Deadline(job.timeoutMs, () => {
      this.#stop(job);
      this.#finish(job, "timed_out", `ran past its timeout of ${job.timeoutMs} ms`);
      this.#settle();
    }, { clock: this.#clock });
    const onError = (error: unknown): void => {
      this.#ended(job, attempt, { result: "error", code: null }, message(error));
      this.#settle();
    };
    try {
      launched.wait().then((outcome) => {
        this.#ended(job, attempt, outcome);
        this.#settle();
      }, onError);
    } catch (error) {
      queueMicrotask(() => onError(error));
    }
  }

  /** An attempt ended: by itself, or after the runner terminated it. */
  #ended(job: Job<P>, attempt: Attempt, outcome: LaunchOutcome, error?: string): void {
    if (attempt.ended) return;
    attempt.ended = true;
    attempt.deadline?.cancel();
    this.#stopping.delete(attempt);
    job.code = outcome.code ?? null;
    if (!attempt.stopped) {
      this.#leave(job);
      job.attempt = undefined;
      const [state, reason] = error !== undefined
        ? ["failed" as const, error]
        : outcome.result === "success"
        ? ["succeeded" as const, undefined]
        : outcome.result === "timeout"
        ? ["timed_out" as const, "the launcher timed out"]
        : outcome.result === "error"
        ? ["failed" as const, `exit code ${outcome.code}`]
        : ["failed" as const, "terminated"];
      this.#finish(job, state, reason);
    }
    const stopping = attempt.stopping;
    if (stopping === undefined) return;
    if (job.stopping === stopping.promise) job.stopping = undefined;
    stopping.resolve();
  }

  /** Terminates the job's current attempt (if any); the caller sets the new state. */
  #stop(job: Job<P>): void {
    const attempt = job.attempt;
    if (attempt === undefined) return this.#dequeue(job);
    job.attempt = undefined;
    attempt.stopped = true;
    attempt.deadline?.cancel();
    const wasSuspended = job.suspended;
    this.#leave(job);
    const launched = attempt.launched;
    if (launched === undefined || attempt.ended) return;
    attempt.stopping = Promise.withResolvers<void>();
    this.#stopping.add(attempt);
    job.stopping = attempt.stopping.promise;
    try {
      if (wasSuspended) launched.resume();
      launched.terminate().catch(() => {});
    } catch {
      // its wait() still tells when it ends
    }
  }

  #cancel(job: Job<P>, reason: string | undefined): void {
    this.#stop(job);
    this.#finish(job, "cancelled", reason);
  }

  /** Takes the job out of its slot or out of the queue (a suspended job). */
  #leave(job: Job<P>): void {
    if (this.#running.has(job)) this.#leaveSlot(job);
    else this.#dequeue(job);
    job.suspended = false;
  }

  #leaveSlot(job: Job<P>): void {
    this.#running.delete(job);
    job.runMs += this.#clock.now() - job.segmentStart;
  }

  #finish(job: Job<P>, state: JobState, reason?: string): void {
    job.endedAt = this.#clock.now();
    this.#jobs.delete(job.id);
    job.unlisten?.();
    job.unlisten = undefined;
    this.#to(job, state, reason);
    if (job.stopping === undefined) job.settle();
    else job.stopping.then(() => job.settle());
  }

  // ---- queue ----

  #rankOf(job: Job<P>): number {
    return this.#agingMs > 0 ? job.priority * this.#agingMs + job.submittedAt : job.priority;
  }

  /** A job's level now: aged while waiting, its start level while running, else its priority. */
  #level(job: Job<P>): number {
    if (isRunning(job)) return job.level;
    if (this.#agingMs === 0 || job.endedAt !== undefined) return job.priority;
    const aged = Math.floor((this.#clock.now() - job.submittedAt) / this.#agingMs);
    return Math.max(0, job.priority - aged);
  }

  #enqueue(job: Job<P>): void {
    job.rank = this.#rankOf(job);
    this.#waiting.push(job);
    if (this.#claims !== this.#waiting) this.#claims.push(job);
  }

  #dequeue(job: Job<P>): void {
    this.#waiting.remove(job);
    if (this.#claims !== this.#waiting) this.#claims.remove(job);
  }

  // ---- events ----

  #to(job: Job<P>, state: JobState, reason?: string): void {
    // the only move to "queued" is the first one
    job.previous = state === "queued" ? undefined : job.state;
    job.state = state;
    job.reason = reason;
    this.#counts[state]++;
    this.#pending.push(
      new JobEvent<P>(state, {
        job: job.view,
        previous: job.previous,
        time: this.#clock.now(),
        running: this.#running.size,
        waiting: this.#waiting.length,
      }),
    );
  }

  #flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      for (let i = 0; i < this.#pending.length; i++) this.dispatchEvent(this.#pending[i]);
    } finally {
      this.#pending = [];
      this.#flushing = false;
    }
  }

  #isIdle(): boolean {
    return this.#running.size === 0 && this.#waiting.length === 0 && this.#stopping.size === 0;
  }

  #checkIdle(): void {
    if (this.#idle.length === 0 || !this.#isIdle()) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }
}

function endedOf(attempt: Attempt): Promise<void> {
  return attempt.stopping!.promise;
}
