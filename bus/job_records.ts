/**
 * The bus's record of each job, for `list` and `show` (`docs/protocol.md`, "Queries"): owner,
 * payload, name, priority, state, scheduler, times, attempts, result, reason and a short history;
 * kept for live jobs and for the most recent finished ones, within bounds.
 *
 * @module
 */

import type { DispatcherJobEvent } from "./dispatcher_types.ts";
import type {
  BusJobState,
  JobDetails,
  JobHistoryEntry,
  JobList,
  JobPayload,
  JobSummary,
} from "./protocol.ts";
import type { JobResult } from "../scheduler/job_result.ts";

/** Options for {@linkcode JobRecords}. */
export interface JobRecordsOptions {
  /**
   * How many finished jobs are remembered (the oldest finished forgotten first).
   * @default {10_000}
   */
  maxFinished?: number;
  /**
   * How many characters of output tails (`result.stdoutTail` + `result.stderrTail`) the
   * finished jobs may hold in all (the oldest finished forgotten first).
   * @default {67_108_864}
   */
  maxFinishedTailChars?: number;
  /**
   * Largest `jobs` answer, in bytes of JSON: a {@linkcode JobRecords.list} stops adding jobs
   * before its summaries would pass it (`total` still counts every match).
   * @default {1_000_000}
   */
  maxListBytes?: number;
}

export type { JobQuery } from "./job_store.ts";
import type { JobQuery } from "./job_store.ts";

/** The most entries of a job's history; the oldest are dropped beyond. */
export const MAX_HISTORY = 100;
/** `list`'s default limit. */
export const DEFAULT_LIST_LIMIT = 100;
/** `list`'s largest limit. */
export const MAX_LIST_LIMIT = 10_000;
/** Longest reason kept in a history entry (a longer one is cut, with "…"). */
const MAX_HISTORY_REASON = 512;
/** The dispatcher's reason for a job it re-attaches to a reconnecting scheduler: not a new run. */
const REATTACHED = "reattached";

/** A history entry's fields, flat: state, at, scheduler, reason (no object per entry). */
type History = (string | number | undefined)[];
const STRIDE = 4;

interface JobRecord {
  id: string;
  owner: string;
  payload: JobPayload;
  priority: number;
  seq: number; // acceptance order
  state: BusJobState;
  atScheduler: boolean; // handed to a scheduler (not waiting in the bus)
  scheduler: string | undefined;
  submittedAt: number;
  startedAt: number | undefined;
  endedAt: number | undefined;
  attempts: number;
  result: Record<string, unknown> | undefined;
  reason: string | undefined;
  history: History;
  final: boolean;
  tailChars: number;
  older: JobRecord | undefined; // finished list links (finished ones only)
  newer: JobRecord | undefined;
}

/**
 * The bus's memory of jobs, fed with the dispatcher's job events: a record is opened by the
 * `queued` event of a submission (announced with {@linkcode JobRecords.expect}), follows every
 * later event, and is kept once final among the most recent `maxFinished` finished jobs while
 * their output tails stay within `maxFinishedTailChars`. Ids the bus assigned are kept like
 * given ones. Events of a job already final (a broadcast job's later reports) are ignored.
 *
 * @example
 * ```ts
 * import { JobRecords } from "./job_records.ts";
 * const records = new JobRecords();
 * records.expect({ priority: 3, runtime: 1 });
 * records.record({ cmd: "event", id: "j-1", state: "queued", at: 1, priority: 3, owner: "ann" });
 * records.expect(undefined);
 * records.record({
 *   cmd: "event", id: "j-1", state: "succeeded", at: 9, priority: 3, owner: "ann",
 *   scheduler: "n1", final: true,
 * });
 * console.log(records.show("j-1")?.history.map((h) => h.state)); // ["queued", "succeeded"]
 * console.log(records.list({ states: ["succeeded"] }).total); // 1
 * ```
 */
export class JobRecords {
  #records = new Map<string, JobRecord>();
  #oldest: JobRecord | undefined; // finished, oldest first through `newer`
  #newest: JobRecord | undefined;
  #finished = 0;
  #tailChars = 0;
  #seq = 0;
  #expected: JobPayload | undefined;
  #maxFinished: number;
  #maxTailChars: number;
  #maxListBytes: number;

  /**
   * Creates an empty JobRecords.
   *
   * @param options See {@linkcode JobRecordsOptions}.
   * @throws {RangeError} If a limit is not a positive integer.
   */
  constructor(options: JobRecordsOptions = {}) {
    this.#maxFinished = limit("maxFinished", options.maxFinished ?? 10_000);
    this.#maxTailChars = limit("maxFinishedTailChars", options.maxFinishedTailChars ?? 67_108_864);
    this.#maxListBytes = limit("maxListBytes", options.maxListBytes ?? 1_000_000);
  }

  /** How many jobs are remembered (live and finished). */
  get size(): number {
    return this.#records.size;
  }

  /** How many finished jobs are remembered. */
  get finished(): number {
    return this.#finished;
  }

  /** Characters of output tails the remembered finished jobs hold. */
  get finishedTailChars(): number {
    return this.#tailChars;
  }

  /**
   * Announces the payload of the job being submitted: the next `queued` event opens its record
   * (the dispatcher emits it during `submit`, before the caller learns an assigned id). Call it
   * again with `undefined` once `submit` returns.
   *
   * @param payload The validated payload, or `undefined` when the submission is over.
   */
  expect(payload: JobPayload | undefined): void {
    this.#expected = payload;
  }

  /**
   * Takes a job event: opens, updates or closes the job's record. Allocates nothing but room
   * for the history entry (and the record, for a new job).
   *
   * @param event The dispatcher's event.
   */
  record(event: DispatcherJobEvent): void {
    const state = event.state;
    if (state === "queued" && this.#expected !== undefined) {
      this.#open(event, this.#expected);
      this.#expected = undefined;
      return;
    }
    const record = this.#records.get(event.id);
    if (record === undefined || record.final) return;
    record.state = state;
    record.priority = event.priority;
    if (event.scheduler !== undefined) record.scheduler = event.scheduler;
    record.reason = event.reason;
    if (event.result !== undefined) record.result = event.result;
    if (state === "requeued") record.atScheduler = false;
    else if (state === "started" || state === "suspended" || state === "resumed") {
      record.atScheduler = true;
      if (state === "started") {
        record.startedAt = event.at;
        if (event.reason !== REATTACHED) record.attempts++;
      }
    }
    addHistory(record, event);
    if (event.final) this.#close(record, event.at);
  }

  /**
   * Notes that a job was handed to a scheduler (it no longer waits in the bus).
   *
   * @param id The job.
   * @param scheduler The scheduler's name.
   */
  dispatched(id: string, scheduler: string): void {
    const record = this.#records.get(id);
    if (record === undefined || record.final) return;
    record.atScheduler = true;
    record.scheduler = scheduler;
  }

  /**
   * Notes a waiting job's new priority (a `set_priority` emits no event).
   *
   * @param id The job.
   * @param priority Its new priority.
   */
  setPriority(id: string, priority: number): void {
    const record = this.#records.get(id);
    if (record !== undefined && !record.final) record.priority = priority;
  }

  /**
   * The jobs that match a query: waiting in the bus first in dispatch order (priority, then
   * acceptance), then those at a scheduler (same order), then finished ones, newest first.
   *
   * @param query Filters: `states` (any of), `name` (a substring of the name or id), `owner`,
   * `limit` (default 100; validated by the caller).
   * @param waiting Why a waiting job waits (`JobSummary.waiting`), if it has a reason.
   * @returns At most `limit` summaries (fewer when `maxListBytes` would be passed) and the
   * number of matches.
   */
  list(query: JobQuery, waiting?: (id: string) => string | undefined): JobList {
    const matches = matcher(query);
    const inBus: JobRecord[] = [];
    const atScheduler: JobRecord[] = [];
    for (const record of this.#records.values()) {
      if (record.final || !matches(record)) continue;
      (record.atScheduler ? atScheduler : inBus).push(record);
    }
    const limit = query.limit ?? DEFAULT_LIST_LIMIT;
    const jobs: JobSummary[] = [];
    let bytes = 0;
    /** Adds a job's summary if the limits allow; false once they do not. */
    const add = (record: JobRecord): boolean => {
      if (jobs.length >= limit) return false;
      const summary = summarize(record, record.atScheduler || record.final ? undefined : waiting);
      bytes += utf8Bytes(JSON.stringify(summary)) + 1;
      if (bytes > this.#maxListBytes) bytes = Infinity; // full: later ones do not fit either
      else jobs.push(summary);
      return bytes !== Infinity;
    };
    let open = true;
    for (const group of [inBus, atScheduler]) {
      if (open) open = group.sort(dispatchOrder).every(add);
    }
    let total = inBus.length + atScheduler.length;
    for (let record = this.#newest; record !== undefined; record = record.older) {
      if (!matches(record)) continue;
      total++;
      if (open) open = add(record);
    }
    return { jobs, total };
  }

  /**
   * One job's details.
   *
   * @param id The job.
   * @param waiting Why it waits, if it waits in the bus with a reason.
   * @returns Its summary, payload, result, reason and history, or undefined if unknown.
   */
  show(id: string, waiting?: (id: string) => string | undefined): JobDetails | undefined {
    const record = this.#records.get(id);
    if (record === undefined) return undefined;
    const details: JobDetails = {
      ...summarize(record, record.atScheduler || record.final ? undefined : waiting),
      payload: record.payload.priority === record.priority
        ? record.payload
        : { ...record.payload, priority: record.priority },
      history: historyEntries(record.history),
    };
    if (record.result !== undefined) details.result = record.result as unknown as JobResult;
    if (record.reason !== undefined) details.reason = record.reason;
    return details;
  }

  #open(event: DispatcherJobEvent, payload: JobPayload): void {
    const old = this.#records.get(event.id);
    if (old?.final) this.#forget(old); // an id used again once forgotten by the dispatcher
    const record: JobRecord = {
      id: event.id,
      owner: event.owner,
      payload,
      priority: event.priority,
      seq: this.#seq++,
      state: "queued",
      atScheduler: false,
      scheduler: undefined,
      submittedAt: event.at,
      startedAt: undefined,
      endedAt: undefined,
      attempts: 0,
      result: undefined,
      reason: event.reason,
      history: [],
      final: false,
      tailChars: 0,
      older: undefined,
      newer: undefined,
    };
    addHistory(record, event);
    this.#records.set(event.id, record);
    if (event.final) this.#close(record, event.at);
  }

  #close(record: JobRecord, at: number): void {
    record.final = true;
    record.endedAt = at;
    record.tailChars = tailChars(record.result);
    record.older = this.#newest;
    if (this.#newest) this.#newest.newer = record;
    else this.#oldest = record;
    this.#newest = record;
    this.#finished++;
    this.#tailChars += record.tailChars;
    while (this.#finished > this.#maxFinished || this.#tailChars > this.#maxTailChars) {
      this.#forget(this.#oldest!); // #finished > 0
    }
  }

  #forget(record: JobRecord): void {
    if (record.older) record.older.newer = record.newer;
    else this.#oldest = record.newer;
    if (record.newer) record.newer.older = record.older;
    else this.#newest = record.older;
    record.older = record.newer = undefined;
    this.#finished--;
    this.#tailChars -= record.tailChars;
    this.#records.delete(record.id);
  }
}

function addHistory(record: JobRecord, event: DispatcherJobEvent): void {
  const history = record.history;
  if (history.length >= MAX_HISTORY * STRIDE) history.splice(0, STRIDE);
  const reason = event.reason;
  history.push(
    event.state,
    event.at,
    event.scheduler,
    reason !== undefined && reason.length > MAX_HISTORY_REASON
      ? reason.slice(0, MAX_HISTORY_REASON - 1) + "…"
      : reason,
  );
}

function historyEntries(history: History): JobHistoryEntry[] {
  const entries: JobHistoryEntry[] = [];
  for (let i = 0; i < history.length; i += STRIDE) {
    const entry: JobHistoryEntry = {
      state: history[i] as BusJobState,
      at: history[i + 1] as number,
    };
    const scheduler = history[i + 2];
    const reason = history[i + 3];
    if (scheduler !== undefined) entry.scheduler = scheduler as string;
    if (reason !== undefined) entry.reason = reason as string;
    entries.push(entry);
  }
  return entries;
}

function summarize(
  record: JobRecord,
  waiting: ((id: string) => string | undefined) | undefined,
): JobSummary {
  const summary: JobSummary = {
    id: record.id,
    priority: record.priority,
    state: record.state,
    owner: record.owner,
    submittedAt: record.submittedAt,
    attempts: record.attempts,
  };
  const name = jobName(record.payload);
  if (name !== undefined) summary.name = name;
  if (record.scheduler !== undefined) summary.scheduler = record.scheduler;
  if (record.startedAt !== undefined) summary.startedAt = record.startedAt;
  if (record.endedAt !== undefined) summary.endedAt = record.endedAt;
  const why = waiting?.(record.id);
  if (why !== undefined) summary.waiting = why;
  return summary;
}

function matcher(query: JobQuery): (record: JobRecord) => boolean {
  const states = query.states && new Set<string>(query.states);
  const { name, owner } = query;
  return (record) =>
    (states === undefined || states.has(record.state)) &&
    (owner === undefined || record.owner === owner) &&
    (name === undefined || record.id.includes(name) ||
      (jobName(record.payload)?.includes(name) ?? false));
}

function dispatchOrder(a: JobRecord, b: JobRecord): number {
  return a.priority - b.priority || a.seq - b.seq;
}

function jobName(payload: JobPayload): string | undefined {
  return typeof payload.name === "string" ? payload.name : undefined;
}

function tailChars(result: Record<string, unknown> | undefined): number {
  if (result === undefined) return 0;
  const { stdoutTail, stderrTail } = result;
  return (typeof stdoutTail === "string" ? stdoutTail.length : 0) +
    (typeof stderrTail === "string" ? stderrTail.length : 0);
}

const encoder = new TextEncoder();

/** A string's length in UTF-8 bytes (counted exactly only when it has non-ASCII characters). */
function utf8Bytes(text: string): number {
  // deno-lint-ignore no-control-regex
  return /^[\x00-\x7f]*$/.test(text) ? text.length : encoder.encode(text).byteLength;
}

function limit(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot create JobRecords: '${name}' must be a positive integer, got ${value}`,
    );
  }
  return value;
}
