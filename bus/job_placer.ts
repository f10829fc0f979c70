/**
 * What the bus server asks of the part that decides where jobs go: the `Dispatcher` on a single
 * bus or on a cluster's leader, or a follower's `FollowerPlacer`, which hands everything to the
 * leader through the shared store.
 *
 * @module
 */

import type {
  BusJobView,
  DispatcherStats,
  DispatcherStatus,
  KnownJobState,
  OpResult,
  SchedulerPeer,
  SubmitRequest,
  SubmitResult,
} from "./dispatcher_types.ts";
import type { SchedulerEventMessage } from "./protocol.ts";

/** The placement of jobs, as `BusServer` uses it (see `Dispatcher` for each method). */
export interface JobPlacer {
  /** Whether a full send buffer held jobs back in the last round. */
  readonly blocked: boolean;
  /** Recognises a known id, or stages a new job in the store (admitted after the commit). */
  prepare(request: SubmitRequest): SubmitResult;
  /** Whether a job is prepared and waits for its commit. */
  isPending(id: string): boolean;
  /** What the bus knows of a job. */
  known(id: string): KnownJobState | undefined;
  /** The prepared jobs, committed: into the queue; why each waits. */
  admit(ids: readonly string[]): (string | undefined)[];
  /** The prepared jobs whose commit failed: forgotten. */
  abandon(ids: readonly string[]): void;
  /** A producer's (or an admin's) cancel. */
  cancel(owner: string | undefined, id: string): OpResult | Promise<OpResult>;
  /** A producer's (or an admin's) priority change. */
  setPriority(
    owner: string | undefined,
    id: string,
    priority: number,
  ): OpResult | Promise<OpResult>;
  /** A scheduler registered (with the jobs it still runs). */
  addScheduler(peer: SchedulerPeer, running?: readonly string[]): void;
  /** A scheduler said `drain`. */
  drainScheduler(client: string): void;
  /** An admin drains the schedulers of a name; how many connections have it. */
  drainSchedulerNamed(name: string): number | Promise<number>;
  /** A scheduler left. */
  removeScheduler(client: string): void;
  /** A scheduler's report. */
  schedulerEvent(client: string, event: SchedulerEventMessage): void;
  /** Another dispatch round. */
  pump(): void;
  /** Where a job is. */
  job(id: string): BusJobView | undefined;
  /** Why a waiting job waits with nothing to run it. */
  waitingReason(id: string): string | undefined;
  /** `/health` counts. */
  stats(): DispatcherStats;
  /** The `/status` snapshot. */
  status(): DispatcherStatus;
  /** Stops timers. */
  close(): void;
}
