/**
 * What goes in and out of the bus's `Dispatcher`: the scheduler peers it is given, the requests
 * it takes, its answers, its events and its `/health` and `/status` figures.
 *
 * @module
 */

import type { Clock } from "../core/clock.ts";
import type { BusJobState, JobEventMessage, JobPayload } from "./protocol.ts";
import type { JobStore } from "./job_store.ts";

/** A connected scheduler as the dispatcher sees it; the server implements it over a socket. */
export interface SchedulerPeer {
  /** The connection id (unique). */
  readonly client: string;
  /** The scheduler's name (the connection id when it gave none). */
  readonly name: string;
  /** 1: a seed scheduler (bare payloads, no reports); 2: credits and events. */
  readonly protocol: 1 | 2;
  /** How many jobs it runs at once (protocol 2; ignored for seed schedulers). */
  readonly slots: number;
  /** Whether a job frame may be sent now (false while its send buffer is over the limit). */
  canSend(): boolean;
  /**
   * A v2 scheduler's labels (`--label gpu=a100`): a job's `requires` must be among them.
   * Absent: no labels.
   */
  readonly labels?: Readonly<Record<string, string>> | undefined;
  /**
   * A v2 scheduler's allow-list (`--allow-command`): which command jobs it runs (names,
   * absolute paths or `"*"`). Absent or empty: sleeper jobs only.
   */
  readonly commands?: readonly string[] | undefined;
  /**
   * Sends a job: a `job` message (protocol 2, with `attempt`: 1 on its first hand-over, then
   * one more per hand-over) or the bare payload (seed).
   */
  sendJob(id: string, payload: JobPayload, attempt: number): void;
  /** Tells a v2 scheduler to stop a job. */
  sendCancel(id: string, reason: string): void;
}

/** Where a job is, as `Dispatcher` tracks it (read-only view). */
export interface BusJobView {
  /** The job id. */
  readonly id: string;
  /** Its owner: a producer's name, or its connection id. */
  readonly owner: string;
  /** Current priority. */
  readonly priority: number;
  /** The last state: a bus state, or the last one its scheduler reported; `dispatched` when sent. */
  readonly state: BusJobState | "dispatched";
  /** The scheduler's name while a v2 scheduler has it. */
  readonly scheduler: string | undefined;
  /** How many times the bus handed it to a scheduler (its current or last attempt). */
  readonly attempts: number;
}

/** A job event as the dispatcher emits it: the wire event plus the job's owner. */
export interface DispatcherJobEvent extends JobEventMessage {
  /** The job's owner (a producer's name or connection id). */
  owner: string;
}

/** A hand-over of a job to a scheduler. */
export interface DispatchInfo {
  /** The job. */
  id: string;
  /** Its priority. */
  priority: number;
  /** The scheduler's name. */
  scheduler: string;
  /** The scheduler's connection id. */
  client: string;
  /** The running job this one is meant to evict, for a preemptor. */
  preempting?: string;
}

/** Options for `Dispatcher`. */
export interface DispatcherOptions {
  /**
   * Most jobs waiting in the bus; beyond it new jobs are rejected "queue full".
   * @default {100_000}
   */
  maxQueue?: number | undefined;
  /**
   * Most unfinished jobs (waiting, running or waiting for a retry) one owner may have in the
   * bus; beyond it its new jobs are rejected "queue full for owner X".
   * @default {undefined} no limit per owner
   */
  maxQueuePerOwner?: number | undefined;
  /**
   * Every job to every scheduler (the seed's behavior) instead of exactly-once.
   * @default {false}
   */
  broadcast?: boolean | undefined;
  /**
   * Where every job, change and result is kept (the idempotency of ids included); the
   * dispatcher starts from its unfinished jobs. The caller commits it (see `JobStore`).
   * @default {new SqliteStore({ path: ":memory:" })}
   */
  store?: JobStore;
  /**
   * How long jobs a restarted bus found at schedulers stay theirs, waiting for each scheduler
   * to register again, before they are requeued (ms).
   * @default {30_000}
   */
  recoverGraceMs?: number | undefined;
  /**
   * How long the jobs of a scheduler lost without `drain` (connection closed, pings
   * unanswered) wait before they may run elsewhere: time for its processes to be killed (its
   * reaper kills them when it dies), so that a job does not run twice at once. A scheduler that
   * registers again meanwhile with the job in `running` keeps it. 0: at once.
   * @default {1000}
   */
  lostFenceMs?: number | undefined;
  /**
   * Where time comes from (event timestamps, start order).
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Called for every job lifecycle event (bus states and forwarded scheduler reports).
   * @default {undefined}
   */
  onJobEvent?: (event: DispatcherJobEvent) => void;
  /**
   * Called when a dispatch round the dispatcher started itself (a retry's backoff ended) left
   * jobs held back by a full send buffer: call {@linkcode Dispatcher.pump} again a little later.
   * @default {undefined}
   */
  onBlocked?: () => void;
  /**
   * Called for every hand-over of a job to a scheduler.
   * @default {undefined}
   */
  onDispatch?: (info: DispatchInfo) => void;
  /**
   * Called with a short line about something unusual but handled (ignored reports, re-attached
   * jobs, cancels sent on reconnect).
   * @default {undefined}
   */
  onNotice?: (message: string) => void;
}

/** A job submission. */
export interface SubmitRequest {
  /** The submitting producer's owner identity. */
  owner: string;
  /** The producer's id for the job; assigned when absent (or `undefined`, as a request's). */
  id?: string | undefined;
  /** The validated payload. */
  payload: JobPayload;
  /** Put before a bus-assigned id (with `--auth`, `"alice/"`: ids are scoped per owner). */
  idPrefix?: string | undefined;
}

/** What the bus knows of a job it already has: the answer to a duplicate submission. */
export interface KnownJobState {
  /**
   * The job's current state; a job handed to a v2 scheduler that has not reported yet is
   * `queued` (waiting at that scheduler).
   */
  state: BusJobState;
  /** Whether that state is the job's final one. */
  final: boolean;
  /** The scheduler that has it, or that reported its final state. */
  scheduler?: string;
  /** The final state's result object, as the scheduler reported it. */
  result?: Record<string, unknown>;
  /** The final state's reason. */
  reason?: string;
}

/** The answer to `Dispatcher.submit`. */
export type SubmitResult =
  | {
    ok: true;
    id: string;
    duplicate: false;
    /**
     * Set when the job waits with nothing to run it: `"no scheduler connected"`,
     * `"no scheduler with gpu=a100"`, `"no scheduler allows command ffmpeg"`.
     */
    waiting?: string;
  }
  | ({ ok: true; id: string; duplicate: true } & KnownJobState)
  | { ok: false; reason: string };

/** The answer to a cancel or set_priority. */
export type OpResult = { ok: true } | { ok: false; reason: string };

/** Counts for `/health`. */
export interface DispatcherStats {
  /** Distinct jobs accepted. */
  received: number;
  /** Hand-overs of jobs to schedulers (a broadcast counts once per scheduler). */
  delivered: number;
  /** Jobs waiting in the bus now. */
  queued: number;
  /** Seed schedulers connected. */
  seedSchedulers: number;
  /** Protocol 2 schedulers connected. */
  v2Schedulers: number;
}

/** A scheduler's line in `/status`. */
export interface SchedulerStatus {
  /** Connection id. */
  client: string;
  /** Name. */
  name: string;
  /** Protocol version. */
  protocol: 1 | 2;
  /** Slots (protocol 2). */
  slots: number | undefined;
  /** Free slots now (protocol 2). */
  free: number | undefined;
  /** Whether it said `drain` (shutting down: it gets no more jobs). */
  draining: boolean;
  /** Jobs it has (protocol 2), with when each was handed over or last started (epoch ms). */
  running: { id: string; priority: number; state: string; since: number }[];
  /** Its labels (protocol 2), when it has some. */
  labels?: Record<string, string>;
  /** Its allow-list of commands (protocol 2), when it runs command jobs. */
  commands?: string[];
  /** When the bus last heard from it (epoch ms; set by the server). */
  heardAt?: number;
}

/** A waiting job in `/status` (the first 100 in dispatch order). */
export interface WaitingJobStatus {
  /** The job id. */
  id: string;
  /** Its priority. */
  priority: number;
  /** Its `name`, when it has one. */
  name?: string;
  /**
   * Why nothing can run it (`"no scheduler connected"`, `"no scheduler with gpu=a100"`,
   * `"no scheduler allows command ffmpeg"`), or null when it waits its turn.
   */
  waiting: string | null;
}

/** The `/status` snapshot of the dispatcher. */
export interface DispatcherStatus {
  /** The waiting queue: its length, counts by priority, its first 100 jobs. */
  queue: { length: number; byPriority: Record<string, number>; jobs: WaitingJobStatus[] };
  /** Connected schedulers. */
  schedulers: SchedulerStatus[];
  /** Final outcomes so far, by state. */
  outcomes: Record<string, number>;
  /**
   * After a restart: jobs found at schedulers that have not registered again yet, by
   * scheduler name.
   */
  recovering: Record<string, number>;
}
