/**
 * A job as the bus's dispatcher keeps it: its record (owner, payload, placement, place in the
 * queue, scheduler, attempts), and the events and answers made from it.
 *
 * @module
 */

import type { PooledScheduler } from "./scheduler_pool.ts";
import type { BusJobState, JobPayload } from "./protocol.ts";
import type { BusJobView, DispatcherJobEvent, KnownJobState } from "./dispatcher_types.ts";
import type { StoredJob } from "./job_store.ts";
import { type Placement, placementKey, placementOf } from "./placement.ts";

/** An event's details beyond the job's own; a field `undefined` (as a report gives) is left out. */
export interface EventExtra {
  /** When (clock ms); default: now. */
  at?: number | undefined;
  /** The scheduler that reported it. */
  scheduler?: string | undefined;
  /** The scheduler's result. */
  result?: Record<string, unknown> | undefined;
  /** Why. */
  reason?: string | undefined;
}

/** A job known to the bus: waiting, at a scheduler, in a retry's backoff, or final. */
export interface BusJob {
  /** The job id. */
  id: string;
  /** The producer chose the id (remembered after the end, for idempotency). */
  givenId: boolean;
  /** Its owner. */
  owner: string;
  /** The validated payload (shared: copy it before changing it). */
  payload: JobPayload;
  /** Where it may run. */
  placement: Placement;
  /** Its placement's key: its class in the bus queue. */
  placementKey: string;
  /** Its current priority. */
  priority: number;
  /** Acceptance order. */
  seq: number;
  /** Hand-overs to schedulers so far. */
  attempt: number;
  /** Failed or timed-out attempts so far (retries used). */
  failures: number;
  /** The result of its last failed attempt. */
  lastResult: Record<string, unknown> | undefined;
  /** Its last state. */
  state: BusJobState | "dispatched";
  /** The v2 scheduler that has it. */
  scheduler: PooledScheduler<BusJob> | undefined;
  /** When it was last given to its scheduler (clock ms). */
  startedAt: number;
  /** Whether it is suspended at its scheduler. */
  suspended: boolean;
  /** The job last sent to evict this one. */
  preemptor: BusJob | undefined;
  /** Its producer asked to cancel it while a scheduler had it. */
  cancelRequested: boolean;
  /** The final event's details, once final. */
  ending: EventExtra | undefined;
}

/**
 * A new job record, waiting.
 *
 * @param id Its id.
 * @param givenId Whether the producer chose it.
 * @param owner Its owner.
 * @param payload The validated payload.
 * @param seq Its acceptance order.
 * @returns The record.
 * @example
 * ```ts
 * import { newBusJob } from "./bus_job.ts";
 * const job = newBusJob("j1", true, "p", { priority: 3, runtime: 1 }, 0);
 * console.log(job.state, job.attempt); // queued 0
 * ```
 */
export function newBusJob(
  id: string,
  givenId: boolean,
  owner: string,
  payload: JobPayload,
  seq: number,
): BusJob {
  const placement = placementOf(payload);
  return {
    id,
    givenId,
    owner,
    payload,
    placement,
    placementKey: placementKey(placement),
    priority: payload.priority,
    seq,
    attempt: 0,
    failures: 0,
    lastResult: undefined,
    state: "queued",
    scheduler: undefined,
    startedAt: 0,
    suspended: false,
    preemptor: undefined,
    cancelRequested: false,
    ending: undefined,
  };
}

/**
 * A job event as the dispatcher emits it.
 *
 * @param job The job.
 * @param state The state.
 * @param extra Details.
 * @param now The clock's time, for an event without `extra.at`.
 * @param final Whether it ends the job.
 * @returns The event.
 * @example
 * ```ts
 * import { busJobEvent, newBusJob } from "./bus_job.ts";
 * const job = newBusJob("j1", true, "p", { priority: 3, runtime: 1 }, 0);
 * console.log(busJobEvent(job, "queued", {}, 5).at); // 5
 * ```
 */
export function busJobEvent(
  job: BusJob,
  state: BusJobState,
  extra: EventExtra,
  now: number,
  final = false,
): DispatcherJobEvent {
  const event: DispatcherJobEvent = {
    cmd: "event",
    id: job.id,
    state,
    at: extra.at ?? now,
    priority: job.priority,
    owner: job.owner,
  };
  if (extra.scheduler !== undefined) event.scheduler = extra.scheduler;
  if (extra.result !== undefined) event.result = extra.result;
  if (extra.reason !== undefined) event.reason = extra.reason;
  if (final) event.final = true;
  return event;
}

/**
 * What the bus says of a job it already has, answering a duplicate submission.
 *
 * @param job The job.
 * @returns Its state (a job handed to a scheduler that has not reported yet is `queued`),
 * whether final, its scheduler, and its final result and reason.
 * @example
 * ```ts
 * import { knownState, newBusJob } from "./bus_job.ts";
 * console.log(knownState(newBusJob("j1", true, "p", { priority: 3, runtime: 1 }, 0)));
 * // { state: "queued", final: false }
 * ```
 */
export function knownState(job: BusJob): KnownJobState {
  const { ending } = job;
  const state = job.state === "dispatched" ? "queued" : job.state;
  const known: KnownJobState = { state, final: ending !== undefined };
  const scheduler = ending ? ending.scheduler : job.scheduler?.peer.name;
  if (scheduler !== undefined) known.scheduler = scheduler;
  if (ending?.result !== undefined) known.result = ending.result;
  if (ending?.reason !== undefined) known.reason = ending.reason;
  return known;
}

/**
 * What the bus says of a job it has only in its store (final, or not yet recovered), answering a
 * duplicate submission; see {@linkcode knownState}.
 *
 * @param stored The stored job.
 * @returns Its state, whether final, its scheduler, and its final result and reason.
 * @example
 * ```ts
 * import { knownStoredState } from "./bus_job.ts";
 * import type { StoredJob } from "./job_store.ts";
 * const stored = {
 *   id: "j1", owner: "p", givenId: true, payload: { priority: 3, runtime: 1 }, priority: 3,
 *   seq: 0, state: "succeeded", final: true, atScheduler: false, scheduler: "n1", attempt: 1,
 *   starts: 1, failures: 0, lastResult: undefined, submittedAt: 1, startedAt: 2, endedAt: 3,
 *   result: undefined, reason: undefined,
 * } satisfies StoredJob;
 * console.log(knownStoredState(stored)); // { state: "succeeded", final: true, scheduler: "n1" }
 * ```
 */
export function knownStoredState(stored: StoredJob): KnownJobState {
  const state = stored.state === "dispatched" ? "queued" : stored.state;
  const known: KnownJobState = { state, final: stored.final };
  if (stored.scheduler !== undefined && (stored.final || stored.atScheduler)) {
    known.scheduler = stored.scheduler;
  }
  if (stored.final && stored.result !== undefined) known.result = stored.result;
  if (stored.final && stored.reason !== undefined) known.reason = stored.reason;
  return known;
}

/**
 * A job record rebuilt from the store by a restarted bus: its priority, state, hand-overs and
 * retries as stored; at no scheduler (the dispatcher re-attaches it when its scheduler is back).
 *
 * @param stored The stored unfinished job.
 * @returns The record.
 * @example
 * ```ts
 * import { restoredBusJob } from "./bus_job.ts";
 * const job = restoredBusJob({
 *   id: "j1", owner: "p", givenId: true, payload: { priority: 3, runtime: 1 }, priority: 2,
 *   seq: 7, state: "started", final: false, atScheduler: true, scheduler: "n1", attempt: 1,
 *   starts: 1, failures: 0, lastResult: undefined, submittedAt: 1, startedAt: 2,
 *   endedAt: undefined, result: undefined, reason: undefined,
 * });
 * console.log(job.priority, job.state, job.attempt); // 2 started 1
 * ```
 */
export function restoredBusJob(stored: StoredJob): BusJob {
  const payload = stored.payload.priority === stored.priority
    ? stored.payload
    : { ...stored.payload, priority: stored.priority };
  const job = newBusJob(stored.id, stored.givenId, stored.owner, payload, stored.seq);
  job.attempt = stored.attempt;
  job.failures = stored.failures;
  job.lastResult = stored.lastResult;
  job.state = stored.final ? "queued" : stored.state;
  job.startedAt = stored.startedAt ?? 0;
  return job;
}

/**
 * Where a job is, as the store has it (a job that is not live in the dispatcher).
 *
 * @param stored The stored job.
 * @returns Its view; `scheduler` only while a scheduler has it.
 * @example
 * ```ts
 * import { storedJobView } from "./bus_job.ts";
 * const view = storedJobView({
 *   id: "j1", owner: "p", givenId: true, payload: { priority: 3, runtime: 1 }, priority: 3,
 *   seq: 0, state: "succeeded", final: true, atScheduler: true, scheduler: "n1", attempt: 1,
 *   starts: 1, failures: 0, lastResult: undefined, submittedAt: 1, startedAt: 2, endedAt: 3,
 *   result: undefined, reason: undefined,
 * });
 * console.log(view.state, view.scheduler); // succeeded undefined
 * ```
 */
export function storedJobView(stored: StoredJob): BusJobView {
  return {
    id: stored.id,
    owner: stored.owner,
    priority: stored.priority,
    state: stored.state,
    scheduler: stored.atScheduler && !stored.final ? stored.scheduler : undefined,
    attempts: stored.attempt,
  };
}
