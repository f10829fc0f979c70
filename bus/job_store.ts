/**
 * The bus's durable memory of jobs, behind one interface: every accepted job, its state changes
 * (the job events, numbered), its result, the idempotency of producer ids, and the queries of
 * `list` and `show`. `SqliteStore` (`sqlite_store.ts`) implements it over `node:sqlite`, on
 * disk or in memory; a shared database could implement it for several bus processes.
 *
 * Writes are staged: each one is applied at once (so reads see it) inside the current batch,
 * which {@linkcode JobStore.commit} makes durable. The bus answers, sends and tells nothing that
 * depends on a write before the batch that holds it is committed (group commit: one commit per
 * turn of the event loop).
 *
 * @module
 */

import type { DispatcherJobEvent } from "./dispatcher_types.ts";
import type { BusJobState, JobDetails, JobList, JobPayload, ListMessage } from "./protocol.ts";

/** `list`'s default limit. */
export const DEFAULT_LIST_LIMIT = 100;
/** `list`'s largest limit. */
export const MAX_LIST_LIMIT = 10_000;
/** The most entries of a job's history in `show` (the latest ones). */
export const MAX_HISTORY = 100;

/** A `list` query: the filters of a {@linkcode ListMessage}. */
export type JobQuery = Omit<ListMessage, "cmd">;

/** The store's state of a job: the bus state, or `dispatched` (sent, no report yet). */
export type StoredJobState = BusJobState | "dispatched";

/** A job as the store keeps it. */
export interface StoredJob {
  /** The job id (bus-wide: with `--auth`, `<owner>/<id>`). */
  id: string;
  /** Its owner. */
  owner: string;
  /** The producer chose the id (else the bus assigned it). */
  givenId: boolean;
  /** The validated payload, with the current priority. */
  payload: JobPayload;
  /** The current priority. */
  priority: number;
  /** Acceptance order, bus-wide (see {@linkcode JobStore.lastJobSeq}). */
  seq: number;
  /** The last state. */
  state: StoredJobState;
  /** Whether `state` is final. */
  final: boolean;
  /** Whether a scheduler has it now (handed over and not back in the bus). */
  atScheduler: boolean;
  /** The scheduler that has it, or had it last. */
  scheduler: string | undefined;
  /** Hand-overs to schedulers so far (the bus's `attempt`). */
  attempt: number;
  /** Starts reported by schedulers (a re-attached job's `started` is not one). */
  starts: number;
  /** Failed or timed-out attempts used as retries. */
  failures: number;
  /** The result of the last failed attempt (kept for a retry's cancel). */
  lastResult: Record<string, unknown> | undefined;
  /** When it was accepted (epoch ms). */
  submittedAt: number;
  /** When it last started (epoch ms). */
  startedAt: number | undefined;
  /** When it ended (epoch ms). */
  endedAt: number | undefined;
  /** The final result, as its scheduler reported it. */
  result: Record<string, unknown> | undefined;
  /** The last reason given. */
  reason: string | undefined;
}

/** A new job for {@linkcode JobStore.accept}. */
export interface NewJob {
  /** The job id. */
  id: string;
  /** Its owner. */
  owner: string;
  /** The producer chose the id. */
  givenId: boolean;
  /** The validated payload. */
  payload: JobPayload;
  /** Acceptance order: greater than every job's before it. */
  seq: number;
  /** When it was accepted (epoch ms). */
  at: number;
}

/** A job event as stored: the dispatcher's event and its number. */
export interface StoredEvent extends DispatcherJobEvent {
  /** The event's sequence number (increasing, bus-wide). */
  seq: number;
}

/** The result of {@linkcode JobStore.commit}. */
export type CommitResult =
  | {
    /** The batch is durable. */
    ok: true;
    /** How long the commit took, ms. */
    ms: number;
    /** How many writes it held. */
    writes: number;
  }
  | {
    /** The batch could not be written; it was rolled back. */
    ok: false;
    /** Why, in one line: `"store unavailable: disk I/O error"`. */
    reason: string;
    /**
     * The jobs accepted in the batch: they are not in the store (answer them `rejected`
     * "store unavailable"). The batch's other writes are kept and tried again with the next
     * commit.
     */
    rejected: string[];
  };

/** What the store holds, for `/health`, `/metrics` and the logs. */
export interface StoreStats {
  /** `"sqlite"` on disk, `"memory"`, `"postgres"`. */
  kind: string;
  /** Where (a file path, `":memory:"`). */
  location: string;
  /** Jobs kept, finished ones included. */
  jobs: number;
  /** Finished jobs kept. */
  finished: number;
  /** Events kept. */
  events: number;
  /** Commits so far, and the failed ones. */
  commits: number;
  /** Commits that failed. */
  failedCommits: number;
  /** Writes staged in the current batch, not yet committed. */
  staged: number;
  /** Whether the last commit failed (the store is unavailable until one succeeds). */
  unavailable: boolean;
}

/**
 * The bus's store; see the module doc. All methods are synchronous; none but
 * {@linkcode JobStore.commit} reports a write failure (a failed write fails its batch's commit).
 */
export interface JobStore {
  /** The latest event's `seq` (0 when none). */
  readonly lastSeq: number;
  /** The oldest event's `seq` still kept (`lastSeq + 1` when none). */
  readonly firstSeq: number;
  /** The greatest acceptance `seq` of any job kept or pruned (-1 when none). */
  readonly lastJobSeq: number;
  /**
   * True when the store gives accepted jobs their `seq` at commit (a shared database): read it
   * back with {@linkcode JobStore.get} once committed. Absent: `NewJob.seq` is kept.
   */
  readonly assignsJobSeq?: boolean;

  /**
   * Stages a new job, `queued` and at no scheduler. Only a commit that succeeds makes it part
   * of the store; a failed one names it in `rejected`.
   */
  accept(job: NewJob): void;
  /**
   * Stages a job event: numbers it (returns its `seq`), keeps it in the job's history and
   * updates the job as `list`/`show` describe it: state, priority, scheduler, reason, result,
   * times (`startedAt` on `started`, `endedAt` on a final event), `starts` (on `started`
   * unless its reason is `"reattached"`), `atScheduler` (false on `requeued`, true on
   * `started`/`suspended`/`resumed`). Events of an unknown job or of a final one are numbered
   * and kept but change no job.
   */
  event(event: DispatcherJobEvent): number;
  /** Stages a hand-over: state `dispatched`, at `scheduler`, `attempt` hand-overs so far. */
  dispatched(id: string, scheduler: string, attempt: number): void;
  /** Stages a waiting job's new priority (the payload's too). */
  setPriority(id: string, priority: number): void;
  /** Stages a retry's bookkeeping: failures used and the failed attempt's result. */
  retried(id: string, failures: number, lastResult: Record<string, unknown> | undefined): void;
  /**
   * Makes the staged writes durable in one transaction; see {@linkcode CommitResult}. A store
   * on a server (PostgreSQL) answers with a Promise; the caller starts no other commit before
   * it settles.
   */
  commit(): CommitResult | Promise<CommitResult>;

  /** A job, final or not, with the staged writes applied. */
  get(id: string): StoredJob | undefined;
  /** The unfinished jobs in acceptance order (what a restarted bus recovers). */
  unfinished(): StoredJob[];
  /**
   * The jobs that match a query: waiting in the bus first in dispatch order (priority, then
   * acceptance), then those at a scheduler (same order), then finished ones, newest first; at
   * most `limit` (default 100) and at most `maxListBytes` of JSON, and the number of matches.
   * `waiting` says why a job waiting in the bus waits (`JobSummary.waiting`).
   */
  list(query: JobQuery, waiting?: (id: string) => string | undefined): JobList;
  /** One job's details and history (the latest 100 events), or undefined if unknown. */
  show(id: string, waiting?: (id: string) => string | undefined): JobDetails | undefined;
  /**
   * Events after `after` in `seq` order: of one owner's jobs, or of all (`owner` undefined);
   * at most `limit`.
   */
  eventsAfter(after: number, owner: string | undefined, limit: number): StoredEvent[];
  /**
   * Forgets finished jobs beyond what is kept (older than the age limit, or beyond the count
   * limit, oldest finished first) and their events; staged like other writes.
   *
   * @returns How many jobs it forgot.
   */
  prune(now: number): number;
  /** Counts, for health and metrics. */
  stats(): StoreStats;
  /** Closes the store (a staged batch not committed is rolled back). Idempotent. */
  close(): void;
}
