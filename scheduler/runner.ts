/**
 * The runner: runs jobs by priority on a fixed number of slots, with eviction, timeouts, aging
 * and a shutdown that hands back unfinished work.
 *
 * @module
 */

import type { Clock, TimerId } from "../core/clock.ts";
import { TypedEventTarget } from "../core/typed_event_target.ts";
import { DuplicateJobIdError, RunnerClosedError } from "./errors.ts";
import {
  JOB_STATES,
  JobEvent,
  type JobState,
  type JobView,
  type Launcher,
  type LaunchOutcome,
} from "./job.ts";
import {
  checkPriority,
  type EvictMode,
  jobSettings,
  type RunnerOptions,
  runnerSettings,
  type RunnerSnapshot,
  type SubmitOptions,
} from "./runner_options.ts";
import { Attempt, finalStateOf, LAUNCH_ERROR, message } from "./attempt.ts";
import { JobRecord } from "./job_record.ts";
import { WaitingLine } from "./waiting_line.ts";

export type { EvictMode, RunnerOptions, RunnerSnapshot, SubmitOptions } from "./runner_options.ts";

/** The runner's events: one per job state, each a {@linkcode JobEvent} of that `type`. */
export type RunnerEventMap<P> = { [S in JobState]: JobEvent<P> };

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
export class Runner<P> extends TypedEventTarget<RunnerEventMap<P>> implements AsyncDisposable {
  #launch: Launcher<P>;
  #slots: number;
  #evict: EvictMode;
  #minRunMs: number;
  #timeoutMs: number;
  #clock: Clock;

  /** Unfinished jobs by id. */
  #jobs = new Map<string, JobRecord<P>>();
  /** Jobs holding a slot. */
  #running = new Set<JobRecord<P>>();
  /** Waiting jobs (suspended ones included). */
  #waiting: WaitingLine<JobRecord<P>>;
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
  #levelOf = (job: JobRecord<P>): number => this.#level(job);
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
    const settings = runnerSettings(options);
    this.#launch = settings.launch;
    this.#slots = settings.slots;
    this.#evict = settings.evict;
    this.#minRunMs = settings.minRunMs;
    this.#timeoutMs = settings.timeoutMs;
    this.#clock = settings.clock;
    this.#waiting = new WaitingLine<JobRecord<P>>(settings.agingMs);
  }

  /** Number of slots. */
  get slots(): number {
    return this.#slots;
  }

  /** The running time allowed to a job submitted without its own `timeoutMs`, ms. */
  get timeoutMs(): number {
    return this.#timeoutMs;
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
    const settings = jobSettings(options, this.#timeoutMs);
    const { priority, timeoutMs, preemptible } = settings;
    let id = settings.id;
    if (this.#closing) throw new RunnerClosedError(id);
    if (id !== undefined && this.#jobs.has(id)) throw new DuplicateJobIdError(id);
    const seq = this.#seq++;
    if (id === undefined) {
      id = `job-${seq}`;
      for (let n = 1; this.#jobs.has(id); n++) id = `job-${seq}-${n}`;
    }
    const job = new JobRecord<P>({
      id,
      priority,
      payload,
      preemptible,
      timeoutMs,
      seq,
      submittedAt: this.#clock.now(),
      levelOf: this.#levelOf,
      now: this.#now,
    });
    this.#jobs.set(id, job);
    this.#waiting.push(job);
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
   * import { sleeperLauncher } from "./sleeper_launcher.ts";
   * await using runner = new Runner({ slots: 1, launch: sleeperLauncher({ output: "null" }) });
   * runner.submit({ runtime: 60 }, { id: "a" });
   * runner.submit({ runtime: 60 }, { id: "b" }); // waits
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
   * import { sleeperLauncher } from "./sleeper_launcher.ts";
   * await using runner = new Runner({ slots: 1, launch: sleeperLauncher({ output: "null" }) });
   * runner.submit({ runtime: 60 }, { priority: 5 });
   * const late = runner.submit({ runtime: 60 }, { priority: 9 });
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
      this.#waiting.reorder(job);
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
   * import { sleeperLauncher } from "./sleeper_launcher.ts";
   * await using runner = new Runner({ launch: sleeperLauncher({ output: "null" }) });
   * runner.submit({ runtime: 60 }, { id: "a" });
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
   * import { sleeperLauncher } from "./sleeper_launcher.ts";
   * await using runner = new Runner({ slots: 1, launch: sleeperLauncher({ output: "null" }) });
   * runner.submit({ runtime: 60 }, { priority: 5 });
   * runner.submit({ runtime: 60 }, { priority: 7 });
   * const { running, waiting } = runner.snapshot();
   * console.log(running.length, waiting[0]?.priority); // 1 7
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
   * import { sleeperLauncher } from "./sleeper_launcher.ts";
   * const runner = new Runner({ slots: 1, launch: sleeperLauncher({ output: "null" }) });
   * runner.submit({ runtime: 60 }, { id: "a" });
   * runner.submit({ runtime: 60 }, { id: "b" });
   * const left = await runner.close();
   * console.log(left.map((job) => job.id)); // ["a", "b"]
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
    await Promise.all([
      ...left.map((job) => job.done),
      ...[...this.#stopping].map((attempt) => attempt.ending),
    ]);
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
        this.#start(this.#waiting.pop()!);
      }
      const claimant = this.#waiting.claimant();
      if (claimant === undefined) return;
      const victim = this.#victimFor(claimant.priority);
      if (victim === undefined) return this.#armTimer(claimant.priority);
      this.#waiting.remove(claimant);
      this.#displace(victim, claimant);
      this.#start(claimant);
    }
  }

  /** The least urgent, most recently started running job that `priority` may evict. */
  #victimFor(priority: number): JobRecord<P> | undefined {
    const now = this.#clock.now();
    let best: JobRecord<P> | undefined;
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

  #displace(victim: JobRecord<P>, by: JobRecord<P>): void {
    const reason = `evicted by ${by.id}`;
    if (this.#evict === "suspend") {
      this.#leaveSlot(victim);
      victim.attempt?.suspend();
      victim.suspended = true;
      this.#waiting.push(victim);
      this.#to(victim, "suspended", reason);
    } else if (this.#evict === "requeue") {
      this.#stop(victim);
      this.#waiting.push(victim);
      this.#to(victim, "requeued", reason);
    } else {
      this.#stop(victim);
      this.#finish(victim, "evicted", reason);
    }
  }

  #start(job: JobRecord<P>): void {
    const now = this.#clock.now();
    job.level = this.#level(job);
    job.startSeq = ++this.#startSeq;
    job.segmentStart = now;
    this.#running.add(job);
    if (job.suspended) {
      job.suspended = false;
      job.attempt?.resume();
      this.#to(job, "resumed");
      return;
    }
    job.startedAt ??= now;
    const attempt = new Attempt();
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

  #launchAttempt(job: JobRecord<P>, attempt: Attempt): void {
    job.attempts++;
    try {
      attempt.run(this.#launch(job.view), job.timeoutMs, this.#clock, {
        onTimeout: () => {
          this.#stop(job);
          this.#finish(job, "timed_out", `ran past its timeout of ${job.timeoutMs / 1000} s`);
          this.#settle();
        },
        onEnd: (outcome, error) => {
          this.#ended(job, attempt, outcome, error);
          this.#settle();
        },
      });
    } catch (error) {
      this.#ended(job, attempt, LAUNCH_ERROR, message(error));
    }
  }

  /** An attempt ended: by itself, or after the runner terminated it. */
  #ended(job: JobRecord<P>, attempt: Attempt, outcome: LaunchOutcome, error?: string): void {
    if (!attempt.end()) return;
    this.#stopping.delete(attempt);
    job.code = outcome.code ?? null;
    job.launch = outcome;
    if (attempt.ending !== undefined && job.stopping === attempt.ending) job.stopping = undefined;
    if (attempt.stopped) return;
    this.#leave(job);
    job.attempt = undefined;
    const [state, reason] = finalStateOf(outcome, error);
    this.#finish(job, state, reason);
  }

  /** Terminates the job's current attempt (if any); the caller sets the new state. */
  #stop(job: JobRecord<P>): void {
    const attempt = job.attempt;
    if (attempt === undefined) return this.#waiting.remove(job);
    job.attempt = undefined;
    const wasSuspended = job.suspended;
    this.#leave(job);
    const ending = attempt.stop(wasSuspended);
    if (ending === undefined) return;
    this.#stopping.add(attempt);
    job.stopping = ending;
  }

  #cancel(job: JobRecord<P>, reason: string | undefined): void {
    this.#stop(job);
    this.#finish(job, "cancelled", reason);
  }

  /** Takes the job out of its slot or out of the queue (a suspended job). */
  #leave(job: JobRecord<P>): void {
    if (this.#running.has(job)) this.#leaveSlot(job);
    else this.#waiting.remove(job);
    job.suspended = false;
  }

  #leaveSlot(job: JobRecord<P>): void {
    this.#running.delete(job);
    job.runMs += this.#clock.now() - job.segmentStart;
  }

  #finish(job: JobRecord<P>, state: JobState, reason?: string): void {
    job.endedAt = this.#clock.now();
    this.#jobs.delete(job.id);
    job.unlisten?.();
    job.unlisten = undefined;
    this.#to(job, state, reason);
    if (job.stopping === undefined) job.settle();
    else job.stopping.then(() => job.settle());
  }

  // ---- levels ----

  /** A job's level now: aged while waiting, its start level while running, else its priority. */
  #level(job: JobRecord<P>): number {
    if (job.running) return job.level;
    if (job.endedAt !== undefined) return job.priority;
    return this.#waiting.agedLevel(job, this.#clock.now());
  }

  // ---- events ----

  #to(job: JobRecord<P>, state: JobState, reason?: string): void {
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
        startsAtOnce: state === "queued" && this.#running.size < this.#slots,
      }),
    );
  }

  #flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      // a listener's submit or cancel appends to #pending: the loop reaches those events too
      for (const event of this.#pending) this.dispatchEvent(event);
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
