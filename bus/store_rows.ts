/**
 * Rows of the bus's SQLite store turned into the bus's types: `StoredJob`, `StoredEvent`,
 * `JobSummary`, history entries (the same shapes `JobRecords` gave).
 *
 * @module
 */

import type { StoredEvent, StoredJob, StoredJobState } from "./job_store.ts";
import type { BusJobState, JobHistoryEntry, JobPayload, JobSummary } from "./protocol.ts";

/** A row as `node:sqlite` returns it. */
export type Row = Record<string, unknown>;

/** Longest reason kept in a history entry (a longer one is cut, with "…"). */
export const MAX_HISTORY_REASON = 512;

/**
 * A `jobs` row as a {@linkcode StoredJob}.
 *
 * @example
 * ```ts
 * import { toStoredJob } from "./store_rows.ts";
 * const job = toStoredJob({
 *   id: "j", owner: "ann", given_id: 1, payload: '{"priority":1,"runtime":1}', priority: 1,
 *   seq: 0, state: "queued", final: 0, at_scheduler: 0, scheduler: null, attempt: 0,
 *   starts: 0, failures: 0, last_result: null, submitted_at: 5, started_at: null,
 *   ended_at: null, result: null, reason: null,
 * });
 * console.log(job.state, job.givenId); // queued true
 * ```
 *
 * @param row The row (every column of `jobs`).
 * @returns The job.
 */
export function toStoredJob(row: Row): StoredJob {
  const priority = row.priority as number;
  let payload = JSON.parse(row.payload as string) as JobPayload;
  if (payload.priority !== priority) payload = { ...payload, priority };
  return {
    id: row.id as string,
    owner: row.owner as string,
    givenId: row.given_id === 1,
    payload,
    priority,
    seq: row.seq as number,
    state: row.state as StoredJobState,
    final: row.final === 1,
    atScheduler: row.at_scheduler === 1,
    scheduler: optional(row.scheduler) as string | undefined,
    attempt: row.attempt as number,
    starts: row.starts as number,
    failures: row.failures as number,
    lastResult: json(row.last_result),
    submittedAt: row.submitted_at as number,
    startedAt: optional(row.started_at) as number | undefined,
    endedAt: optional(row.ended_at) as number | undefined,
    result: json(row.result),
    reason: optional(row.reason) as string | undefined,
  };
}

/**
 * An `events` row as a {@linkcode StoredEvent} (a wire event with its owner and seq).
 *
 * @example
 * ```ts
 * import { toStoredEvent } from "./store_rows.ts";
 * const event = toStoredEvent({
 *   seq: 7, job_id: "j", owner: "ann", state: "queued", at: 1, priority: 2, scheduler: null,
 *   result: null, reason: null, final: 0,
 * });
 * console.log(event); // { cmd: "event", id: "j", state: "queued", at: 1, priority: 2, owner: "ann", seq: 7 }
 * ```
 *
 * @param row The row (every column of `events`).
 * @returns The event.
 */
export function toStoredEvent(row: Row): StoredEvent {
  const event: StoredEvent = {
    cmd: "event",
    id: row.job_id as string,
    state: row.state as BusJobState,
    at: row.at as number,
    priority: row.priority as number,
    owner: row.owner as string,
    seq: row.seq as number,
  };
  if (row.scheduler !== null) event.scheduler = row.scheduler as string;
  if (row.result !== null) event.result = JSON.parse(row.result as string);
  if (row.reason !== null) event.reason = row.reason as string;
  if (row.final === 1) event.final = true;
  return event;
}

/**
 * A `jobs` row as a {@linkcode JobSummary}: the state the last event gave (a job handed to a
 * scheduler and not yet started shows its earlier state), `attempts` the starts reported.
 *
 * @example
 * ```ts
 * import { toSummary } from "./store_rows.ts";
 * const summary = toSummary({
 *   id: "j", owner: "ann", name: "render", priority: 1, shown_state: "queued", final: 0,
 *   at_scheduler: 0, scheduler: null, starts: 0, submitted_at: 5, started_at: null,
 *   ended_at: null,
 * }, () => "no scheduler connected");
 * console.log(summary.waiting); // no scheduler connected
 * ```
 *
 * @param row The row.
 * @param waiting Why a job waiting in the bus waits, if it has a reason.
 * @returns The summary.
 */
export function toSummary(
  row: Row,
  waiting: ((id: string) => string | undefined) | undefined,
): JobSummary {
  const id = row.id as string;
  const summary: JobSummary = {
    id,
    priority: row.priority as number,
    state: row.shown_state as BusJobState,
    owner: row.owner as string,
    submittedAt: row.submitted_at as number,
    attempts: row.starts as number,
  };
  if (row.name !== null) summary.name = row.name as string;
  if (row.scheduler !== null) summary.scheduler = row.scheduler as string;
  if (row.started_at !== null) summary.startedAt = row.started_at as number;
  if (row.ended_at !== null) summary.endedAt = row.ended_at as number;
  if (row.at_scheduler === 0 && row.final === 0 && waiting !== undefined) {
    const why = waiting(id);
    if (why !== undefined) summary.waiting = why;
  }
  return summary;
}

/**
 * An `events` row as a history entry; a reason longer than {@linkcode MAX_HISTORY_REASON}
 * characters is cut, with "…".
 *
 * @example
 * ```ts
 * import { toHistoryEntry } from "./store_rows.ts";
 * const entry = toHistoryEntry({ state: "started", at: 3, scheduler: "n1", reason: null });
 * console.log(entry); // { state: "started", at: 3, scheduler: "n1" }
 * ```
 *
 * @param row The row (`state`, `at`, `scheduler`, `reason`).
 * @returns The entry.
 */
export function toHistoryEntry(row: Row): JobHistoryEntry {
  const entry: JobHistoryEntry = { state: row.state as BusJobState, at: row.at as number };
  if (row.scheduler !== null) entry.scheduler = row.scheduler as string;
  const reason = row.reason as string | null;
  if (reason !== null) {
    entry.reason = reason.length > MAX_HISTORY_REASON
      ? reason.slice(0, MAX_HISTORY_REASON - 1) + "…"
      : reason;
  }
  return entry;
}

function optional(value: unknown): unknown {
  return value === null ? undefined : value;
}

function json(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "string" ? JSON.parse(value) as Record<string, unknown> : undefined;
}
