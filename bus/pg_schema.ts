/**
 * The schema of `PostgresStore` in PostgreSQL and its migrations: versioned in `meta`
 * (`schema_version`), applied by the bus at open under a transaction-scoped advisory lock, so
 * that two buses starting at once migrate once.
 *
 * @module
 */

import type { Sql, TransactionSql } from "postgres";
import { StoreError } from "./store_errors.ts";

/** The advisory lock key held while the schema is checked and migrated. */
export const MIGRATION_LOCK = 7_201_301;

/** One migration: brings the schema from version `index` to `index + 1`. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    seq BIGINT NOT NULL,
    priority DOUBLE PRECISION NOT NULL,
    final BOOLEAN NOT NULL,
    at_scheduler BOOLEAN NOT NULL,
    ended_seq BIGINT,
    ended_at BIGINT,
    "row" JSONB NOT NULL
  );
  CREATE INDEX jobs_queue ON jobs (at_scheduler, priority, seq) WHERE NOT final;
  CREATE INDEX jobs_unfinished ON jobs (seq) WHERE NOT final;
  CREATE INDEX jobs_finished ON jobs (ended_seq) WHERE final;
  CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    job_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    "row" JSONB NOT NULL
  );
  CREATE INDEX events_job ON events (job_id, seq);
  CREATE INDEX events_owner ON events (owner, seq);
  CREATE SEQUENCE job_seq MINVALUE 0 START 0;
  CREATE TABLE changes (
    id BIGSERIAL PRIMARY KEY,
    bus TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    batch JSONB NOT NULL
  );
  INSERT INTO meta VALUES ('last_seq', 0), ('last_job_seq', -1), ('pruned_floor', 0)
    ON CONFLICT DO NOTHING;
  `,
  `
  CREATE TABLE buses (id TEXT PRIMARY KEY, beat TIMESTAMPTZ NOT NULL);
  INSERT INTO meta VALUES ('leader_epoch', 0) ON CONFLICT DO NOTHING;
  `,
];

/** The schema version this code writes. */
export const PG_SCHEMA_VERSION: number = MIGRATIONS.length;

/**
 * Creates or migrates the schema, one transaction holding `pg_advisory_xact_lock`.
 *
 * @example
 * ```ts ignore
 * import postgres from "postgres";
 * import { migratePg } from "./pg_schema.ts";
 * const sql = postgres("postgres://postgres@127.0.0.1:5432/sched");
 * console.log(await migratePg(sql)); // 1
 * await sql.end();
 * ```
 *
 * @param sql The connection pool.
 * @returns The schema version now.
 * @throws {StoreError} If the database's schema is newer than this code knows.
 */
export async function migratePg(sql: Sql): Promise<number> {
  return await sql.begin(async (tx: TransactionSql) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx.unsafe(
      "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    );
    const rows = await tx`SELECT value::text AS v FROM meta WHERE key = 'schema_version'`;
    const version = rows.length === 0 ? 0 : Number(rows[0]!.v);
    if (version > PG_SCHEMA_VERSION) {
      throw new StoreError(
        `Cannot open store: its schema version ${version} is newer than this bus knows ` +
          `(${PG_SCHEMA_VERSION})`,
      );
    }
    for (let v = version; v < PG_SCHEMA_VERSION; v++) {
      await tx.unsafe(MIGRATIONS[v]!);
      await tx`INSERT INTO meta VALUES ('schema_version', ${v + 1})
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`;
    }
    return PG_SCHEMA_VERSION;
  });
}
