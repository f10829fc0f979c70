/**
 * Several buses on one shared store (PostgreSQL): what they tell each other, through the store's
 * log (`docs/cluster.md`). Every message is a write of the sender's batch, committed with it and
 * read by the other buses in log order: nothing goes between buses but through the database.
 *
 * @module
 */

import type { JobStore, StoredEvent } from "./job_store.ts";
import type { JobPayload, SchedulerEventMessage } from "./protocol.ts";

/** A message between buses: to the leader (`to: "leader"`), to one bus, or to all (`"*"`). */
export type ClusterMail =
  /** Follower → leader: a scheduler registered at the follower. */
  | {
    kind: "register";
    bus: string;
    client: string;
    name: string;
    slots: number;
    labels?: Record<string, string> | undefined;
    commands?: string[] | undefined;
    running: string[];
  }
  /** Follower → leader: a report of one of its schedulers. */
  | { kind: "report"; bus: string; client: string; event: SchedulerEventMessage }
  /** Follower → leader: one of its schedulers left. */
  | { kind: "gone"; bus: string; client: string }
  /** Follower → leader: one of its schedulers said `drain`. */
  | { kind: "drain"; bus: string; client: string }
  /** Follower → leader: a producer's or an admin's request (answered with `answer`). */
  | {
    kind: "op";
    bus: string;
    ask: string;
    op: "cancel" | "set_priority" | "drain";
    owner: string | null;
    id: string;
    priority?: number;
  }
  /** Leader → a follower: a job for one of its schedulers. */
  | { kind: "job"; client: string; id: string; payload: JobPayload; attempt: number }
  /** Leader → a follower: stop a job at one of its schedulers. */
  | { kind: "cancel"; client: string; id: string; reason: string }
  /** Leader → a follower: these final reports of one of its schedulers are stored. */
  | { kind: "reported"; client: string; ids: string[] }
  /** Leader → a follower: the answer to an `op`. */
  | { kind: "answer"; ask: string; ok: boolean; reason?: string; count?: number }
  /** A new leader → every bus: register your schedulers with me. */
  | { kind: "leader"; bus: string; epoch: number };

/** A batch another bus committed, as a cluster store hands it over. */
export interface ClusterBatch {
  /** The bus that committed it. */
  bus: string;
  /** Its job events, numbered, in order (the leader's). */
  events: StoredEvent[];
  /** The ids of the jobs it accepted (the leader admits them). */
  accepted: string[];
  /** Its messages to this bus (to it, to `"leader"` while it leads, or to `"*"`). */
  mail: ClusterMail[];
}

/** A store several buses share: a `JobStore` with a log of messages and a leader lock. */
export interface ClusterStore extends JobStore {
  /** This bus's id in the log. */
  readonly busId: string;
  /** Whether this bus holds the leader lock. */
  readonly leading: boolean;
  /** Stages a message in the current batch (sent with its commit). */
  mail(to: string, message: ClusterMail): void;
  /**
   * Follows the other buses' batches, in log order, once each is in this bus's mirror.
   *
   * @param callback Called with each batch.
   */
  onBatch(callback: (batch: ClusterBatch) => void): Promise<void>;
  /**
   * Tries to take the leader lock (kept until this bus's session ends, or `resign`).
   *
   * @returns The new leader epoch when this bus now leads; undefined when another bus does.
   */
  tryLead(): Promise<number | undefined>;
  /** Lets the leader lock go. */
  resign(): Promise<void>;
  /** The buses that stopped beating (asked by the leader, to take their schedulers' jobs back). */
  goneBuses(): Promise<string[]>;
  /** Forgets the log's entries older than `ms` (every live bus read them). */
  pruneLog(ms: number): Promise<number>;
  /**
   * Called when this bus lost the lead (a commit found a newer leader epoch: another bus
   * leads): it must act as a follower from now on.
   *
   * @param callback Called once per loss.
   */
  onDeposed(callback: () => void): void;
}

/**
 * Whether a store is shared by several buses.
 *
 * @param store A store.
 * @returns True for a {@linkcode ClusterStore}.
 * @example
 * ```ts
 * import { isClusterStore } from "./cluster_mail.ts";
 * import { SqliteStore } from "./sqlite_store.ts";
 * const store = new SqliteStore({ path: ":memory:" });
 * console.log(isClusterStore(store)); // false
 * store.close();
 * ```
 */
export function isClusterStore(store: JobStore): store is ClusterStore {
  return typeof (store as Partial<ClusterStore>).tryLead === "function";
}
