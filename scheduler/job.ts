/**
 * Jobs as the runner sees them: their states, the launcher contract, the read-only view given to
 * listeners and the final outcome.
 *
 * @module
 */

import type { JobResult } from "./job_result.ts";

/** The most urgent priority. */
export const MIN_PRIORITY = 0;
/** The least urgent priority. */
export const MAX_PRIORITY = 10;

/**
 * Whether a value is a valid priority: an integer from {@linkcode MIN_PRIORITY} (most urgent) to
 * {@linkcode MAX_PRIORITY}.
 *
 * @param value The candidate.
 * @returns True for 0, 1, ..., 10.
 * @example
 * ```ts
 * import { isPriority } from "./job.ts";
 * console.log(isPriority(10), isPriority(11), isPriority(2.5)); // true false false
 * ```
 */
export function isPriority(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= MIN_PRIORITY &&
    (value as number) <= MAX_PRIORITY;
}

/**
 * Every state a job can be in, in the order they usually happen. One {@linkcode JobEvent} of
 * that `type` is dispatched per change.
 *
 * - `queued`: submitted, waiting for a slot.
 * - `started`: holds a slot (launched, or relaunched after `requeued`).
 * - `evicted`: (evict mode `kill`) terminated to make room for a more urgent job; final.
 * - `requeued`: (evict mode `requeue`) terminated to make room, waiting again.
 * - `suspended`: (evict mode `suspend`) stopped, waiting again without a slot.
 * - `resumed`: a suspended job continued in a slot.
 * - `succeeded`, `failed`, `timed_out`, `cancelled`: final.
 *
 * @example
 * ```ts
 * import { JOB_STATES } from "./job.ts";
 * console.log(JOB_STATES.includes("queued")); // true
 * ```
 */
export const JOB_STATES = [
  "queued",
  "started",
  "evicted",
  "requeued",
  "suspended",
  "resumed",
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
] as const;

/** A job's state: one of {@linkcode JOB_STATES}. */
export type JobState = typeof JOB_STATES[number];

/**
 * The states after which nothing more happens to a job (its `done` promise settles).
 *
 * @example
 * ```ts
 * import { FINAL_STATES } from "./job.ts";
 * console.log(FINAL_STATES.length, FINAL_STATES.at(-1)); // 5 "evicted"
 * ```
 */
export const FINAL_STATES = [
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
  "evicted",
] as const satisfies readonly JobState[];

/** A final job state: one of {@linkcode FINAL_STATES}. */
export type FinalState = typeof FINAL_STATES[number];

const FINAL: ReadonlySet<JobState> = new Set(FINAL_STATES);

/**
 * Whether `state` is one of {@linkcode FINAL_STATES}.
 *
 * @param state A job state.
 * @returns `true` for `succeeded`, `failed`, `timed_out`, `cancelled` and `evicted`.
 * @example
 * ```ts
 * import { isFinalState } from "./job.ts";
 * console.log(isFinalState("evicted"), isFinalState("requeued")); // true false
 * ```
 */
export function isFinalState(state: JobState): state is FinalState {
  return FINAL.has(state);
}

/**
 * What a command job's launch reports of its output: the tails of each stream and, with an
 * output directory, the files that hold all of it (the fields of `JobResult`).
 */
export type LaunchOutput = Pick<
  JobResult,
  "stdoutTail" | "stderrTail" | "stdoutTruncated" | "stderrTruncated" | "stdoutFile" | "stderrFile"
>;

/** What a launched job reports when it ends (a `Proc`'s `ProcOutcome` has these fields). */
export interface LaunchOutcome {
  /** How it ended: the four results of a `Proc`. */
  result: "success" | "error" | "timeout" | "terminated";
  /** Exit code, or `null` when killed by a signal. */
  code: number | null;
  /** The signal that ended it (`"SIGKILL"`), `null` when it exited; absent when unknown. */
  signal?: string | null;
  /** Why it could not start at all (`"no such executable: ffmpeg"`): it never ran. */
  startError?: string;
  /** Its output's tails and files, for launchers that keep them. */
  output?: LaunchOutput;
}

/**
 * A job once launched: what the runner needs to control it. A started `Proc` is one.
 *
 * @example A launched job that succeeds at once
 * ```ts
 * import type { LaunchedJob } from "./job.ts";
 * const launched: LaunchedJob = {
 *   wait: () => Promise.resolve({ result: "success", code: 0 }),
 *   terminate: () => Promise.resolve(),
 *   suspend: () => {},
 *   resume: () => {},
 * };
 * console.log((await launched.wait()).result); // "success"
 * ```
 */
export interface LaunchedJob {
  /** Settles once the job has ended; should not reject (a rejection counts as `failed`). */
  wait(): Promise<LaunchOutcome>;
  /** Asks the job to end (a `Proc`: SIGTERM, then SIGKILL after its grace period). */
  terminate(): Promise<unknown>;
  /** Pauses the job (a `Proc`: SIGSTOP). Used by evict mode `suspend`. */
  suspend(): void;
  /** Continues a paused job (a `Proc`: SIGCONT). */
  resume(): void;
}

/** What a {@linkcode Launcher} is told about the job to launch. */
export interface JobInfo<P> {
  /** The job's id. */
  readonly id: string;
  /** The job's priority, {@linkcode MIN_PRIORITY} (most urgent) to {@linkcode MAX_PRIORITY}. */
  readonly priority: number;
  /** The caller's description of the work. */
  readonly payload: P;
  /** Launches so far, this one included (1 on the first launch). */
  readonly attempts: number;
}

/**
 * Starts a job. May throw: the job then fails with the error's message as its reason. The
 * runner owns job timeouts, so a launcher starts its work without one.
 *
 * @example
 * ```ts
 * import type { Launcher } from "./job.ts";
 * const instant: Launcher<string> = () => ({
 *   wait: () => Promise.resolve({ result: "success", code: 0 }),
 *   terminate: () => Promise.resolve(),
 *   suspend: () => {},
 *   resume: () => {},
 * });
 * ```
 */
export type Launcher<P> = (job: JobInfo<P>) => LaunchedJob;

/** The final outcome of a job: what its `done` promise resolves to. */
export interface JobOutcome {
  /** The job's id. */
  id: string;
  /** The final state. */
  state: JobState;
  /** Why, in words, when the state alone does not say (a launcher error, "runner closed"…). */
  reason: string | undefined;
  /** The last launch's exit code; `null` if killed by a signal or never launched. */
  code: number | null;
  /** When the job was submitted (clock time, ms). */
  submittedAt: number;
  /** When the job first started, if it ever did. */
  startedAt: number | undefined;
  /** When the runner ended the job (for jobs it terminated: when it decided to). */
  endedAt: number;
  /** Time not spent running: `endedAt - submittedAt - runMs`. */
  waitMs: number;
  /** Time spent running, over all attempts, suspended time excluded. */
  runMs: number;
  /** How many times the job was launched. */
  attempts: number;
  /** What its last launch reported (signal, output, start error), if it was launched. */
  launch?: LaunchOutcome;
}

/** A read-only, live view of a job in a runner. */
export interface JobView<P> extends JobInfo<P> {
  /** The current state. */
  readonly state: JobState;
  /** The state before the current one (`undefined` while `queued` for the first time). */
  readonly previous: JobState | undefined;
  /** Why the job is in its state, when there is more to say ("evicted by job-7", an error…). */
  readonly reason: string | undefined;
  /**
   * The priority the runner ranks the job by now: while waiting, the priority after aging; while
   * running, the level it started at (see `RunnerOptions.agingMs`). Equals `priority` without
   * aging.
   */
  readonly effectivePriority: number;
  /** Whether the job may be evicted. */
  readonly preemptible: boolean;
  /** The job's timeout: running time allowed per attempt, in milliseconds. */
  readonly timeoutMs: number;
  /** Submission order within the runner (0, 1, 2…): breaks ties among equals. */
  readonly seq: number;
  /** When the job was submitted (clock time, ms). */
  readonly submittedAt: number;
  /** When the job first started, if it did. */
  readonly startedAt: number | undefined;
  /** When the job ended, once final. */
  readonly endedAt: number | undefined;
  /** Running time so far, over all attempts. */
  readonly runMs: number;
  /** Time not spent running so far (until `endedAt` once final). */
  readonly waitMs: number;
  /** The last launch's exit code, once known. */
  readonly code: number | null;
  /** What the last launch reported once it ended (signal, output, start error). */
  readonly launch: LaunchOutcome | undefined;
  /** Settles with the outcome once the job is final and its process has ended. Never rejects. */
  readonly done: Promise<JobOutcome>;
}

/** What a {@linkcode JobEvent} carries besides its type. */
export interface JobEventInit<P> {
  /** The job (a live view: read `event.type` for the state this event is about). */
  job: JobView<P>;
  /** The job's state before this change. */
  previous: JobState | undefined;
  /** Clock time of the change, ms. */
  time: number;
  /** Slots in use right after the change. */
  running: number;
  /** Jobs waiting (suspended ones included) right after the change. */
  waiting: number;
  /**
   * For a `queued` event: whether a slot was free, so the job starts in the same step.
   * @default {false}
   */
  startsAtOnce?: boolean;
}

/**
 * One change of a job's state, dispatched by the runner; `type` is the new state.
 *
 * @example
 * ```ts
 * import { JobEvent, type JobView } from "./job.ts";
 * const job = { id: "a", priority: 3 } as JobView<string>;
 * const event = new JobEvent("queued", { job, previous: undefined, time: 0, running: 0, waiting: 1 });
 * console.log(event.type, event.job.id, event.startsAtOnce); // "queued" "a" false
 * ```
 */
export class JobEvent<P = unknown> extends Event {
  /** The job (live view). */
  readonly job: JobView<P>;
  /** The job's state before this change. */
  readonly previous: JobState | undefined;
  /** Clock time of the change, ms. */
  readonly time: number;
  /** Slots in use right after the change. */
  readonly running: number;
  /** Jobs waiting right after the change. */
  readonly waiting: number;
  /**
   * True for the `queued` event of a job submitted while a slot was free: its `started` event
   * follows in the same step, so it never really waited and displays of waiting jobs skip it.
   * False for every other event (a job that must evict another to start was queued while every
   * slot was busy: `false`).
   */
  readonly startsAtOnce: boolean;

  /**
   * Creates the event of one state change.
   *
   * @param type The job's new state.
   * @param init The job and the runner's figures at the time of the change.
   */
  constructor(type: JobState, init: JobEventInit<P>) {
    super(type);
    this.job = init.job;
    this.previous = init.previous;
    this.time = init.time;
    this.running = init.running;
    this.waiting = init.waiting;
    this.startsAtOnce = init.startsAtOnce ?? false;
  }

  /** The job's new state (same as `type`, typed). */
  get state(): JobState {
    return this.type as JobState;
  }
}
