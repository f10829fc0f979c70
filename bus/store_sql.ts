/**
 * The SQL statements of the bus's SQLite store (`SqliteStore`), prepared once at open.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import { MAX_HISTORY, type StoredJob } from "./job_store.ts";
import { type Row, toStoredJob } from "./store_rows.ts";

/** The columns `toStoredJob` reads. */
export const JOB_COLUMNS = [
  "id",
  "owner",
  "given_id",
  "payload",
  "priority",
  "seq",
  "state",
  "final",
  "at_scheduler",
  "scheduler",
  "attempt",
  "starts",
  "failures",
  "last_result",
  "submitted_at",
  "started_at",
  "ended_at",
  "result",
  "reason",
] as const;

const BY_SEQ = "final = 1 AND ended_seq <= ?";
const BY_AGE = "final = 1 AND ended_at < ?";

/** Every statement the store prepares at open. */
const SQL = {
  jobFinal: "SELECT final FROM jobs WHERE id = ?",
  updateOnQueued:
    "UPDATE jobs SET priority = ?, scheduler = coalesce(?, scheduler), reason = ? WHERE id = ?",
  job: "SELECT * FROM jobs WHERE id = ?",
  deleteJob: "DELETE FROM jobs WHERE id = ?",
  insertJob:
    `INSERT INTO jobs (id, owner, given_id, payload, name, priority, seq, state, shown_state,
        final, at_scheduler, attempt, starts, failures, submitted_at, since_seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 'queued', 0, 0, 0, 0, 0, ?, ?)`,
  insertEvent:
    `INSERT INTO events (seq, job_id, owner, state, at, priority, scheduler, result, reason,
        final) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  updateOnEvent: `UPDATE jobs SET state = ?1, shown_state = ?1, priority = ?2,
        scheduler = coalesce(?3, scheduler), reason = ?4, result = coalesce(?5, result),
        at_scheduler = coalesce(?6, at_scheduler), started_at = coalesce(?7, started_at),
        starts = starts + ?8, final = ?9, ended_at = ?10, ended_seq = ?11
       WHERE id = ?12 AND final = 0`,
  dispatched: `UPDATE jobs SET state = 'dispatched', at_scheduler = 1, scheduler = ?, attempt = ?
       WHERE id = ? AND final = 0`,
  setPriority: `UPDATE jobs SET priority = ?, payload = json_set(payload, '$.priority', ?)
       WHERE id = ? AND final = 0`,
  retried: "UPDATE jobs SET failures = ?, last_result = ? WHERE id = ?",
  setMeta: "UPDATE meta SET value = ? WHERE key = ?",
  unfinished: `SELECT ${JOB_COLUMNS.join(", ")} FROM jobs WHERE final = 0 AND seq > ?
    ORDER BY seq LIMIT ?`,
  history: `SELECT state, at, scheduler, reason FROM events
       WHERE job_id = ?1 AND seq >= ?2 AND (?3 IS NULL OR seq <= ?3)
       ORDER BY seq DESC LIMIT ${MAX_HISTORY}`,
  eventsAfter: "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
  ownerEventsAfter: "SELECT * FROM events WHERE owner = ? AND seq > ? ORDER BY seq LIMIT ?",
  countCut: "SELECT ended_seq FROM jobs WHERE final = 1 ORDER BY ended_seq DESC LIMIT 1 OFFSET ?",
  prunedMaxBySeq:
    `SELECT max(seq) m FROM events WHERE job_id IN (SELECT id FROM jobs WHERE ${BY_SEQ})`,
  pruneEventsBySeq: `DELETE FROM events WHERE job_id IN (SELECT id FROM jobs WHERE ${BY_SEQ})`,
  pruneJobsBySeq: `DELETE FROM jobs WHERE ${BY_SEQ}`,
  prunedMaxByAge:
    `SELECT max(seq) m FROM events WHERE job_id IN (SELECT id FROM jobs WHERE ${BY_AGE})`,
  pruneEventsByAge: `DELETE FROM events WHERE job_id IN (SELECT id FROM jobs WHERE ${BY_AGE})`,
  pruneJobsByAge: `DELETE FROM jobs WHERE ${BY_AGE}`,
  counts: `SELECT (SELECT count(*) FROM jobs) jobs, (SELECT count(*) FROM jobs WHERE final = 1)
        finished, (SELECT count(*) FROM events) events`,
};

/** The prepared statements, by name. */
export type Statements = { [K in keyof typeof SQL]: StatementSync };

/**
 * Prepares every statement of the store.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { migrate } from "./store_schema.ts";
 * import { prepare } from "./store_sql.ts";
 * const db = new DatabaseSync(":memory:");
 * migrate(db, ":memory:");
 * console.log(prepare(db).job.get("nobody")); // undefined
 * db.close();
 * ```
 *
 * @param db A database at the current schema version.
 * @returns The statements.
 */
export function prepare(db: DatabaseSync): Statements {
  const statements: Partial<Statements> = {};
  for (const [key, sql] of Object.entries(SQL)) {
    statements[key as keyof Statements] = db.prepare(sql);
  }
  // Rows as arrays: much faster for 100,000 rows (node:sqlite's types lack the method).
  const arrays = statements.unfinished as { setReturnArrays?: (on: boolean) => void };
  arrays.setReturnArrays?.(true);
  return statements as Statements;
}

/**
 * A row of {@linkcode JOB_COLUMNS}, read as an array, as a job.
 *
 * @example
 * ```ts
 * import { fromArray } from "./store_sql.ts";
 * const job = fromArray([
 *   "j", "ann", 1, '{"priority":1,"runtime":1}', 1, 0, "queued", 0, 0, null, 0, 0, 0, null,
 *   5, null, null, null, null,
 * ]);
 * console.log(job.id, job.state); // j queued
 * ```
 *
 * @param values The row's values.
 * @returns The job.
 */
export function fromArray(values: unknown[]): StoredJob {
  const row: Row = {};
  for (let i = 0; i < JOB_COLUMNS.length; i++) row[JOB_COLUMNS[i]!] = values[i];
  return toStoredJob(row);
}
