/**
 * The runner's record of one job, and the live, read-only view of it given to callers and
 * listeners.
 *
 * @module
 */

import type { Attempt } from "./attempt.ts";
import type { JobOutcome, JobState, JobView, LaunchOutcome } from "./job.ts";

/** What a {@linkcode JobRecord} is made from. */
export interface JobRecordInit<P> {
  /** The job's id. */
  id: string;
  /** Its priority. */
  priority: number;
  /** What the launcher needs. */
  payload: P;
  /** Whether it may be evicted. */
  preemptible: boolean;
  /** Running time allowed per attempt, ms. */
  timeoutMs: number;
  /** Submission order within the runner. */
  seq: number;
  /** Clock time of the submission, ms. */
  submittedAt: number;
  /** The runner's level of a job now (its `effectivePriority`). */
  levelOf: (job: JobRecord<P>) => number;
  /** The runner's clock time, ms. */
  now: () => number;
}

/**
 * The runner's mutable record of a job. The runner changes its fields; everyone else sees
 * {@linkcode JobRecord.view}.
 *
 * @typeParam P The payload type.
 *
 * @example
 * ```ts
 * import { JobRecord } from "./job_record.ts";
 * const job = new JobRecord({
 *   id: "a", priority: 3, payload: "x", preemptible: true, timeoutMs: 1000, seq: 0,
 *   submittedAt: 0, levelOf: (job) => job.priority, now: () => 0,
 * });
 * console.log(job.view.state, job.view.effectivePriority); // "queued" 3
 * ```
 */
export class JobRecord<P> {
  /** The read-only view handed out. */
  readonly view: JobView<P>;
  /** The job's id. */
  readonly id: string;
  /** Its priority (changed by `setPriority`). */
  priority: number;
  /** What the launcher needs. */
  readonly payload: P;
  /** Whether it may be evicted. */
  readonly preemptible: boolean;
  /** Running time allowed per attempt, ms. */
  readonly timeoutMs: number;
  /** Submission order within the runner. */
  readonly seq: number;
  /** Clock time of the submission, ms. */
  readonly submittedAt: number;
  /** The current state. */
  state: JobState = "queued";
  /** The state before the current one. */
  previous: JobState | undefined;
  /** Why the job is in its state, when there is more to say. */
  reason: string | undefined;
  /** Waiting order key, set by the waiting line (see `RunnerOptions.agingMs`). */
  rank = 0;
  /** The level it started at: its rank among running jobs for eviction. */
  level = 0;
  /** Order of the latest start or resume (larger: more recent). */
  startSeq = 0;
  /** Clock time of the latest start or resume. */
  segmentStart = 0;
  /** Running time of the segments that ended, ms. */
  runMs = 0;
  /** Launches so far. */
  attempts = 0;
  /** The last launch's exit code. */
  code: number | null = null;
  /** What the last launch reported when it ended. */
  launch: LaunchOutcome | undefined;
  /** When it first started. */
  startedAt: number | undefined;
  /** When the runner ended it. */
  endedAt: number | undefined;
  /** The current launch, while it holds a slot or is suspended. */
  attempt: Attempt | undefined;
  /** Settles when the latest attempt the runner terminated has ended. */
  stopping: Promise<void> | undefined;
  /** Whether it is paused, waiting for a slot. */
  suspended = false;
  /** Removes the listener of its abort signal. */
  unlisten: (() => void) | undefined;
  /** Whether the job is final and its process has ended. */
  settled = false;
  /** `done`, made when first asked for (most callers never ask). */
  #done: PromiseWithResolvers<JobOutcome> | undefined;

  /**
   * Creates the record of a job just submitted (state `queued`).
   *
   * @param init See {@linkcode JobRecordInit}.
   */
  constructor(init: JobRecordInit<P>) {
    this.id = init.id;
    this.priority = init.priority;
    this.payload = init.payload;
    this.preemptible = init.preemptible;
    this.timeoutMs = init.timeoutMs;
    this.seq = init.seq;
    this.submittedAt = init.submittedAt;
    this.view = new LiveJobView(this, init.levelOf, init.now);
  }

  /** Whether the job holds a slot. */
  get running(): boolean {
    return this.state === "started" || this.state === "resumed";
  }

  /** Settles with the outcome once the job is final and its process has ended. */
  get done(): Promise<JobOutcome> {
    if (this.settled) return Promise.resolve(this.#outcome());
    this.#done ??= Promise.withResolvers<JobOutcome>();
    return this.#done.promise;
  }

  /** Marks the job settled and settles `done` if anyone asked for it. */
  settle(): void {
    this.settled = true;
    this.#done?.resolve(this.#outcome());
  }

  #outcome(): JobOutcome {
    const endedAt = this.endedAt ?? this.submittedAt;
    return {
      id: this.id,
      state: this.state,
      reason: this.reason,
      code: this.code,
      submittedAt: this.submittedAt,
      startedAt: this.startedAt,
      endedAt,
      waitMs: endedAt - this.submittedAt - this.runMs,
      runMs: this.runMs,
      attempts: this.attempts,
      ...(this.launch !== undefined && { launch: this.launch }),
    };
  }
}

/** The read-only view of a {@linkcode JobRecord}, live: each getter reads the record now. */
class LiveJobView<P> implements JobView<P> {
  #job: JobRecord<P>;
  #levelOf: (job: JobRecord<P>) => number;
  #now: () => number;

  constructor(job: JobRecord<P>, levelOf: (job: JobRecord<P>) => number, now: () => number) {
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
    return job.runMs + (job.running ? this.#now() - job.segmentStart : 0);
  }
  get waitMs(): number {
    const job = this.#job;
    const at = job.endedAt ?? this.#now();
    return at - job.submittedAt - this.runMs;
  }
  get code(): number | null {
    return this.#job.code;
  }
  get launch(): LaunchOutcome | undefined {
    return this.#job.launch;
  }
  get done(): Promise<JobOutcome> {
    return this.#job.done;
  }
}
