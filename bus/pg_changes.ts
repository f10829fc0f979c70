/**
 * The `changes` log's vocabulary for `PostgresStore`: the writes of a batch as the log keeps them
 * and what another bus's tail hands over.
 *
 * @module
 */

import type { DispatcherJobEvent } from "./dispatcher_types.ts";
import type { NewJob } from "./job_store.ts";
import type { ClusterMail } from "./cluster_mail.ts";

/** A row of the SQLite schema's `jobs` or `events`, by column. */
export type Row = Record<string, unknown>;

/** One store write, as the `changes` log keeps it. */
export type StoreWrite =
  | { op: "accept"; job: NewJob }
  | { op: "event"; event: DispatcherJobEvent; seq: number }
  | { op: "dispatched"; id: string; scheduler: string; attempt: number }
  | { op: "setPriority"; id: string; priority: number }
  | { op: "retried"; id: string; failures: number; lastResult: Record<string, unknown> | null }
  | { op: "prune"; now: number; ids: string[] }
  | { op: "mail"; to: string; message: ClusterMail };

/** A committed batch of another bus, as {@linkcode PostgresStore.onRemote} hands it over. */
export interface RemoteBatch {
  /** Its id in `changes`. */
  id: number;
  /** The bus that committed it. */
  bus: string;
  /** Its writes, in order (job and event seqs as PostgreSQL assigned them). */
  writes: StoreWrite[];
}

/** A batch in the log: the writes, and the rows they left (what a mirror applies). */
export interface LoggedBatch {
  writes: StoreWrite[];
  jobs: Row[];
  events: Row[];
  pruned: string[];
  meta: { last_seq: number; last_job_seq: number; pruned_floor: number };
}

/**
 * The job a write is about ("" for `prune`).
 *
 * @example
 * ```ts
 * import { writeJob } from "./pg_changes.ts";
 * console.log(writeJob({ op: "setPriority", id: "j", priority: 1 })); // j
 * ```
 *
 * @param w The write.
 * @returns The job's id.
 */
export function writeJob(w: StoreWrite): string {
  switch (w.op) {
    case "accept":
      return w.job.id;
    case "event":
      return w.event.id;
    case "prune":
    case "mail":
      return "";
    default:
      return w.id;
  }
}
