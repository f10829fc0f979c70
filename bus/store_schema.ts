/**
 * The schema of the bus's SQLite store and its migrations, versioned with
 * `PRAGMA user_version`: one migration function per version.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { StoreError } from "./store_errors.ts";

/** One migration: brings a database from version `index` to `index + 1`. */
type Migration = (db: DatabaseSync) => void;

const MIGRATIONS: readonly Migration[] = [
  (db) =>
    db.exec(`
    CREATE TABLE jobs (
      id TEXT PRIMARY KEY,
      owner TEXT NOT NULL,
      given_id INTEGER NOT NULL,
      payload TEXT NOT NULL,
      name TEXT,
      priority REAL NOT NULL,
      seq INTEGER NOT NULL,
      state TEXT NOT NULL,
      shown_state TEXT NOT NULL,
      final INTEGER NOT NULL,
      at_scheduler INTEGER NOT NULL,
      scheduler TEXT,
      attempt INTEGER NOT NULL,
      starts INTEGER NOT NULL,
      failures INTEGER NOT NULL,
      last_result TEXT,
      submitted_at INTEGER NOT NULL,
      started_at INTEGER,
      ended_at INTEGER,
      ended_seq INTEGER,
      since_seq INTEGER NOT NULL,
      result TEXT,
      reason TEXT
    );
    CREATE INDEX jobs_queue ON jobs (at_scheduler, priority, seq) WHERE final = 0;
    CREATE INDEX jobs_unfinished ON jobs (seq) WHERE final = 0;
    CREATE INDEX jobs_finished ON jobs (ended_seq) WHERE final = 1;
    CREATE INDEX jobs_ended_at ON jobs (ended_at) WHERE final = 1;
    CREATE TABLE events (
      seq INTEGER PRIMARY KEY,
      job_id TEXT NOT NULL,
      owner TEXT NOT NULL,
      state TEXT NOT NULL,
      at INTEGER NOT NULL,
      priority REAL NOT NULL,
      scheduler TEXT,
      result TEXT,
      reason TEXT,
      final INTEGER NOT NULL
    );
    CREATE INDEX events_owner ON events (owner, seq);
    CREATE INDEX events_job ON events (job_id, seq);
    CREATE TABLE meta (
      key TEXT PRIMARY KEY,
      value INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO meta VALUES ('last_seq', 0), ('last_job_seq', -1), ('pruned_floor', 0);
  `),
];

/** The schema version this code writes. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;

/**
 * Brings a database to {@linkcode SCHEMA_VERSION}, each migration in its own transaction.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { migrate, SCHEMA_VERSION } from "./store_schema.ts";
 * const db = new DatabaseSync(":memory:");
 * migrate(db, ":memory:");
 * console.log(db.prepare("PRAGMA user_version").get()?.user_version === SCHEMA_VERSION); // true
 * db.close();
 * ```
 *
 * @param db The open database.
 * @param location Its path, for the error message.
 * @throws {StoreError} If the database's version is newer than this code knows.
 */
export function migrate(db: DatabaseSync, location: string): void {
  const version = Number(db.prepare("PRAGMA user_version").get()?.user_version ?? 0);
  if (version > SCHEMA_VERSION) {
    throw new StoreError(
      `Cannot open store ${location}: its schema version ${version} is newer than this bus ` +
        `knows (${SCHEMA_VERSION}); use a newer bus`,
    );
  }
  for (let v = version; v < SCHEMA_VERSION; v++) {
    db.exec("BEGIN IMMEDIATE");
    try {
      MIGRATIONS[v]!(db);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
  }
}
