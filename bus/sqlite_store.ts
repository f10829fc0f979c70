/**
 * `SqliteStore`: the bus's {@linkcode JobStore} over `node:sqlite`, in a file (WAL mode) or in
 * memory. See `docs/store.md`.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { DispatcherJobEvent } from "./dispatcher_types.ts";
import {
  type CommitResult,
  DEFAULT_LIST_LIMIT,
  type JobQuery,
  type JobStore,
  type NewJob,
  type StoredEvent,
  type StoredJob,
  type StoreStats,
} from "./job_store.ts";
import type { JobDetails, JobList, JobSummary } from "./protocol.ts";
import type { JobResult } from "../scheduler/job_result.ts";
import { StoreError } from "./store_errors.ts";
import { migrate } from "./store_schema.ts";
import { type Row, toHistoryEntry, toStoredEvent, toStoredJob, toSummary } from "./store_rows.ts";
import { type ListSql, listSql } from "./store_list.ts";
import { fromArray, prepare, type Statements } from "./store_sql.ts";

/** Options for {@linkcode SqliteStore}. */
export interface SqliteStoreOptions {
  /** The database file, or `":memory:"`. */
  path: string;
  /**
   * `synchronous` for a file: `"full"` (a commit survives a power loss) or `"normal"` (the
   * last commits before a power loss may be lost; a crash of the bus loses nothing).
   * @default {"full"}
   */
  sync?: "full" | "normal";
  /** How many finished jobs {@linkcode SqliteStore.prune} keeps. */
  keepFinished?: {
    /** The age (since they ended) beyond which they go, ms. @default {604_800_000} (7 days) */
    ms?: number;
    /** How many of the newest are kept at most. @default {100_000} */
    count?: number;
  };
  /**
   * Largest `list` answer, in bytes of JSON (`total` still counts every match).
   * @default {1_000_000}
   */
  maxListBytes?: number;
  /** Test hooks. */
  faults?: {
    /** Called before each `COMMIT`; throwing fails the commit (a full disk, say). */
    beforeCommit?: () => void;
    /** Called before each write is applied; throwing fails it (SQLITE_FULL, say). */
    beforeWrite?: () => void;
  };
  /**
   * Holds the database file for this store alone (`locking_mode=EXCLUSIVE`, taken at once,
   * `busy_timeout` 0): another process opening it fails with "database is locked". The lock
   * dies with the process. `openDataDir` sets it.
   * @default {false}
   */
  exclusive?: boolean;
}

/** A store's database and a re-read of its counters: see {@linkcode mirrorAccess}. */
export interface MirrorAccess {
  /** The store's database (`jobs`, `events`, `meta`: `bus/store_schema.ts`). */
  db: DatabaseSync;
  /** Reads `lastSeq`, `lastJobSeq` and `firstSeq` again from `meta` and `events`. */
  reload: () => void;
}

const mirrors = new WeakMap<SqliteStore, MirrorAccess>();

/**
 * The database under a store, for `PostgresStore`'s in-memory mirror only (it loads rows into
 * it and writes back what PostgreSQL assigned). Not for other uses: writes here bypass the
 * store's batch.
 *
 * @example
 * ```ts
 * import { mirrorAccess, SqliteStore } from "./sqlite_store.ts";
 * const store = new SqliteStore({ path: ":memory:" });
 * const { db, reload } = mirrorAccess(store);
 * db.exec("UPDATE meta SET value = 41 WHERE key = 'last_seq'");
 * reload();
 * console.log(store.lastSeq); // 41
 * store.close();
 * ```
 *
 * @param store The store.
 * @returns Its database and a re-read of its counters.
 */
export function mirrorAccess(store: SqliteStore): MirrorAccess {
  return mirrors.get(store)!;
}

/** A staged write: applied at once, re-applied after a failed commit unless an acceptance. */
interface Write {
  apply: () => void;
  job: string | undefined;
  accept: boolean;
}

const REATTACHED = "reattached";
/** Rows read per query by `unfinished()`. */
const UNFINISHED_CHUNK = 10_000;

/**
 * The bus's store over `node:sqlite` (see {@linkcode JobStore} for each method's meaning).
 * Nothing of the jobs is cached in JS: every read is a query.
 *
 * @example
 * ```ts
 * import { SqliteStore } from "./sqlite_store.ts";
 * const store = new SqliteStore({ path: ":memory:" });
 * store.accept({ id: "j", owner: "ann", givenId: true, payload: { priority: 1, runtime: 1 }, seq: 0, at: 5 });
 * store.event({ cmd: "event", id: "j", state: "queued", at: 5, priority: 1, owner: "ann" });
 * console.log(store.commit().ok); // true
 * console.log(store.show("j")?.history.map((h) => h.state)); // ["queued"]
 * store.close();
 * ```
 */
export class SqliteStore implements JobStore {
  readonly #db: DatabaseSync;
  readonly #location: string;
  readonly #keepMs: number;
  readonly #keepCount: number;
  readonly #maxListBytes: number;
  readonly #beforeCommit: (() => void) | undefined;
  readonly #beforeWrite: (() => void) | undefined;
  readonly #s: Statements;
  readonly #listCache = new Map<string, StatementSync>();
  #log: Write[] = [];
  /** Ids accepted in the current batch: their `queued` event needs no full row update. */
  #fresh = new Map<string, number>();
  #pending: Write[] = [];
  #inTx = false;
  #failure: string | undefined;
  #lastSeq: number;
  #lastJobSeq: number;
  #floor: number;
  #commits = 0;
  #failedCommits = 0;
  #unavailable = false;
  #closed = false;

  /**
   * Opens (creating or migrating) the store.
   *
   * @param options See {@linkcode SqliteStoreOptions}.
   * @throws {RangeError} If an option is out of range.
   * @throws {StoreError} If the schema is newer than this code knows.
   * @throws {Error} `node:sqlite`'s, if the file cannot be opened or is locked.
   */
  constructor(options: SqliteStoreOptions) {
    this.#location = options.path;
    this.#keepMs = positive("keepFinished.ms", options.keepFinished?.ms ?? 7 * 86_400_000);
    this.#keepCount = positive("keepFinished.count", options.keepFinished?.count ?? 100_000);
    this.#maxListBytes = positive("maxListBytes", options.maxListBytes ?? 1_000_000);
    const sync = options.sync ?? "full";
    if (sync !== "full" && sync !== "normal") {
      throw new RangeError(`Cannot open store: 'sync' must be "full" or "normal", got ${sync}`);
    }
    this.#beforeCommit = options.faults?.beforeCommit;
    this.#beforeWrite = options.faults?.beforeWrite;
    this.#db = new DatabaseSync(options.path);
    try {
      this.#configure(options.path !== ":memory:", sync, options.exclusive ?? false);
      migrate(this.#db, options.path);
      this.#s = prepare(this.#db);
      this.#lastSeq = this.#lastJobSeq = this.#floor = 0;
      this.#readMeta();
    } catch (error) {
      this.#db.close();
      throw error;
    }
    mirrors.set(this, { db: this.#db, reload: () => this.#readMeta() });
  }

  /** Reads the counters from `meta` (and the events' greatest seq). */
  #readMeta(): void {
    const meta = new Map<string, number>();
    for (const row of this.#db.prepare("SELECT key, value FROM meta").all()) {
      meta.set(row.key as string, row.value as number);
    }
    const maxSeq = Number(this.#db.prepare("SELECT max(seq) m FROM events").get()?.m ?? 0);
    this.#lastSeq = Math.max(meta.get("last_seq") ?? 0, maxSeq);
    this.#lastJobSeq = meta.get("last_job_seq") ?? -1;
    this.#floor = meta.get("pruned_floor") ?? 0;
  }

  #configure(file: boolean, sync: string, exclusive: boolean): void {
    const db = this.#db;
    db.exec("PRAGMA busy_timeout = 0");
    if (exclusive) db.exec("PRAGMA locking_mode = EXCLUSIVE");
    if (file) db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${sync === "full" ? "FULL" : "NORMAL"}`);
    if (exclusive) {
      db.exec("BEGIN IMMEDIATE"); // takes the lock now, and keeps it
      db.exec("COMMIT");
    }
  }

  /** The latest event's `seq` (0 when none). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The oldest event's `seq` that may still be kept: one past the newest pruned one. */
  get firstSeq(): number {
    return this.#floor + 1;
  }

  /** The greatest acceptance `seq` of any job kept or pruned (-1 when none). */
  get lastJobSeq(): number {
    return this.#lastJobSeq;
  }

  /**
   * Stages a new job, `queued` and at no scheduler. An id of a job that ended is taken over
   * (the old job and its history are replaced).
   *
   * @param job The job.
   * @throws {StoreError} If a job with this id exists and has not ended.
   */
  accept(job: NewJob): void {
    const old = this.#s.jobFinal.get(job.id);
    if (old !== undefined && old.final !== 1) {
      throw new StoreError(`Cannot accept job ${job.id}: a job with this id has not ended`);
    }
    if (job.seq > this.#lastJobSeq) this.#lastJobSeq = job.seq;
    const since = this.#lastSeq + 1;
    const s = this.#s;
    const name = typeof job.payload.name === "string" ? job.payload.name : null;
    this.#fresh.set(job.id, job.payload.priority);
    this.#write(job.id, true, () => {
      if (old !== undefined) s.deleteJob.run(job.id);
      s.insertJob.run(
        job.id,
        job.owner,
        job.givenId ? 1 : 0,
        JSON.stringify(job.payload),
        name,
        job.payload.priority,
        job.seq,
        job.at,
        since,
      );
    });
  }

  /**
   * Stages a job event (see {@linkcode JobStore.event}).
   *
   * @param event The dispatcher's event.
   * @returns Its `seq`.
   */
  event(event: DispatcherJobEvent): number {
    const seq = ++this.#lastSeq;
    const s = this.#s;
    const state = event.state;
    const result = event.result === undefined ? null : JSON.stringify(event.result);
    const final = event.final === true ? 1 : 0;
    const atScheduler = state === "requeued"
      ? 0
      : state === "started" || state === "suspended" || state === "resumed"
      ? 1
      : null;
    const started = state === "started";
    const scheduler = event.scheduler ?? null;
    const reason = event.reason ?? null;
    const insert = (): void => {
      s.insertEvent.run(
        seq,
        event.id,
        event.owner,
        state,
        event.at,
        event.priority,
        scheduler,
        result,
        reason,
        final,
      );
    };
    const fresh = state === "queued" && final === 0 ? this.#fresh.get(event.id) : undefined;
    if (fresh !== undefined) {
      this.#write(event.id, false, () => {
        insert();
        if (reason !== null || scheduler !== null || fresh !== event.priority) {
          s.updateOnQueued.run(event.priority, scheduler, reason, event.id);
        }
      });
      return seq;
    }
    this.#write(event.id, false, () => {
      insert();
      s.updateOnEvent.run(
        state,
        event.priority,
        scheduler,
        reason,
        result,
        atScheduler,
        started ? event.at : null,
        started && reason !== REATTACHED ? 1 : 0,
        final,
        final ? event.at : null,
        final ? seq : null,
        event.id,
      );
    });
    return seq;
  }

  /**
   * Stages a hand-over: state `dispatched`, at `scheduler`.
   *
   * @param id The job.
   * @param scheduler The scheduler's name.
   * @param attempt Hand-overs so far, this one included.
   */
  dispatched(id: string, scheduler: string, attempt: number): void {
    this.#write(id, false, () => this.#s.dispatched.run(scheduler, attempt, id));
  }

  /**
   * Stages a waiting job's new priority (the payload's too).
   *
   * @param id The job.
   * @param priority Its new priority.
   */
  setPriority(id: string, priority: number): void {
    this.#write(id, false, () => this.#s.setPriority.run(priority, priority, id));
  }

  /**
   * Stages a retry's bookkeeping.
   *
   * @param id The job.
   * @param failures Failed attempts used as retries so far.
   * @param lastResult The failed attempt's result.
   */
  retried(id: string, failures: number, lastResult: Record<string, unknown> | undefined): void {
    const json = lastResult === undefined ? null : JSON.stringify(lastResult);
    this.#write(id, false, () => this.#s.retried.run(failures, json, id));
  }

  /**
   * Commits the staged writes in one transaction (see {@linkcode CommitResult}). After a failed
   * commit the writes other than acceptances (and those of the rejected jobs) are applied again
   * in the next batch; the next commit tries them again.
   *
   * @returns The outcome; never throws for a write or commit failure.
   * @throws {StoreError} If the store is closed.
   */
  commit(): CommitResult {
    this.#open("commit");
    if (!this.#inTx && this.#log.length === 0 && this.#pending.length === 0) {
      return { ok: true, ms: 0, writes: 0 };
    }
    const start = performance.now();
    this.#begin();
    const writes = this.#log.length;
    if (this.#failure === undefined) {
      try {
        this.#s.setMeta.run(this.#lastSeq, "last_seq");
        this.#s.setMeta.run(this.#lastJobSeq, "last_job_seq");
        this.#s.setMeta.run(this.#floor, "pruned_floor");
        this.#beforeCommit?.();
        this.#db.exec("COMMIT");
      } catch (error) {
        this.#failure = describe(error);
      }
    }
    if (this.#failure === undefined) {
      this.#inTx = false;
      this.#log = [];
      this.#fresh.clear();
      this.#commits++;
      this.#unavailable = false;
      return { ok: true, ms: performance.now() - start, writes };
    }
    return this.#fail();
  }

  #fail(): CommitResult {
    const reason = `store unavailable: ${this.#failure}`;
    this.#rollback();
    const rejected = this.#log.filter((w) => w.accept).map((w) => w.job!);
    const gone = new Set(rejected);
    this.#pending = this.#log.filter((w) => !w.accept && !gone.has(w.job!));
    this.#log = [];
    this.#fresh.clear();
    this.#failure = undefined;
    this.#commits++;
    this.#failedCommits++;
    this.#unavailable = true;
    if (this.#pending.length > 0) this.#begin(); // reads see the kept writes again
    return { ok: false, reason, rejected };
  }

  #rollback(): void {
    try {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
    } catch {
      // SQLite may have rolled back by itself (SQLITE_FULL, IOERR): nothing left to undo.
    }
    this.#inTx = false;
  }

  /** Opens the batch if none is open: `BEGIN IMMEDIATE`, then the writes kept from a failure. */
  #begin(): void {
    if (this.#inTx) return;
    if (this.#failure === undefined) {
      try {
        this.#db.exec("BEGIN IMMEDIATE");
        this.#inTx = true;
      } catch (error) {
        this.#failure = describe(error);
      }
    }
    const kept = this.#pending;
    this.#pending = [];
    for (const write of kept) this.#apply(write);
  }

  #write(job: string | undefined, accept: boolean, apply: () => void): void {
    this.#open("write");
    this.#begin();
    this.#apply({ apply, job, accept });
  }

  #apply(write: Write): void {
    this.#log.push(write);
    if (this.#failure !== undefined) return; // the batch failed: kept for the next one
    try {
      this.#beforeWrite?.();
      write.apply();
    } catch (error) {
      this.#failure = describe(error);
    }
  }

  /**
   * A job, final or not, with the staged writes applied.
   *
   * @param id The job.
   * @returns The job, or undefined if unknown.
   */
  get(id: string): StoredJob | undefined {
    this.#open("get");
    const row = this.#s.job.get(id);
    return row === undefined ? undefined : toStoredJob(row);
  }

  /**
   * The unfinished jobs in acceptance order.
   *
   * @returns The jobs.
   */
  unfinished(): StoredJob[] {
    this.#open("unfinished");
    const jobs: StoredJob[] = [];
    let after = -Infinity;
    for (;;) {
      const rows = this.#s.unfinished.all(after, UNFINISHED_CHUNK) as unknown[];
      for (const row of rows) {
        jobs.push(Array.isArray(row) ? fromArray(row) : toStoredJob(row as Row));
      }
      if (rows.length < UNFINISHED_CHUNK) return jobs;
      after = jobs[jobs.length - 1]!.seq;
    }
  }

  /**
   * The jobs that match a query (see {@linkcode JobStore.list}).
   *
   * @param query Filters and `limit` (validated by the caller).
   * @param waiting Why a job waiting in the bus waits, if it has a reason.
   * @returns The summaries and the number of matches.
   */
  list(query: JobQuery, waiting?: (id: string) => string | undefined): JobList {
    this.#open("list");
    const sql = listSql(query);
    const limit = query.limit ?? DEFAULT_LIST_LIMIT;
    const total = Number(this.#statement(sql.count).get(...sql.params)?.n ?? 0);
    const jobs: JobSummary[] = [];
    let bytes = 0;
    for (const group of groups(sql)) {
      if (jobs.length >= limit) break;
      const rows = this.#statement(group).iterate(...sql.params, limit - jobs.length);
      for (const row of rows) {
        const summary = toSummary(row as Row, waiting);
        bytes += utf8Bytes(JSON.stringify(summary)) + 1;
        if (bytes > this.#maxListBytes) return { jobs, total };
        jobs.push(summary);
      }
    }
    return { jobs, total };
  }

  /**
   * One job's details and its latest 100 events.
   *
   * @param id The job.
   * @param waiting Why it waits, if it waits in the bus with a reason.
   * @returns The details, or undefined if unknown.
   */
  show(id: string, waiting?: (id: string) => string | undefined): JobDetails | undefined {
    this.#open("show");
    const row = this.#s.job.get(id);
    if (row === undefined) return undefined;
    const job = toStoredJob(row);
    const history = this.#s.history.all(id, row.since_seq as number, row.ended_seq ?? null)
      .map((entry) => toHistoryEntry(entry as Row)).reverse();
    const details: JobDetails = { ...toSummary(row, waiting), payload: job.payload, history };
    if (job.result !== undefined) details.result = job.result as unknown as JobResult;
    if (job.reason !== undefined) details.reason = job.reason;
    return details;
  }

  /**
   * Events after `after` in `seq` order, of one owner's jobs or of all.
   *
   * @param after The last seq the reader has.
   * @param owner The owner, or undefined for all.
   * @param limit How many at most.
   * @returns The events.
   */
  eventsAfter(after: number, owner: string | undefined, limit: number): StoredEvent[] {
    this.#open("eventsAfter");
    const rows = owner === undefined
      ? this.#s.eventsAfter.all(after, limit)
      : this.#s.ownerEventsAfter.all(owner, after, limit);
    return rows.map((row) => toStoredEvent(row as Row));
  }

  /**
   * Stages the forgetting of finished jobs beyond `keepFinished` and of their events.
   *
   * @param now The time, epoch ms.
   * @returns How many jobs it forgot (0 if the batch has already failed).
   */
  prune(now: number): number {
    let forgot = 0;
    this.#write(undefined, false, () => {
      const s = this.#s;
      const cut = Number(s.countCut.get(this.#keepCount)?.ended_seq ?? -1);
      const old = now - this.#keepMs;
      // Two passes, each along its index: beyond the count, then too old.
      for (
        const [max, events, jobs, limit] of [
          [s.prunedMaxBySeq, s.pruneEventsBySeq, s.pruneJobsBySeq, cut],
          [s.prunedMaxByAge, s.pruneEventsByAge, s.pruneJobsByAge, old],
        ] as const
      ) {
        const newest = max.get(limit)?.m;
        events.run(limit);
        forgot += Number(jobs.run(limit).changes);
        if (typeof newest === "number" && newest > this.#floor) this.#floor = newest;
      }
    });
    return forgot;
  }

  /**
   * Counts, for health and metrics.
   *
   * @returns The counts.
   */
  stats(): StoreStats {
    this.#open("stats");
    const counts = this.#s.counts.get()!;
    return {
      kind: this.#location === ":memory:" ? "memory" : "sqlite",
      location: this.#location,
      jobs: Number(counts.jobs),
      finished: Number(counts.finished ?? 0),
      events: Number(counts.events),
      commits: this.#commits,
      failedCommits: this.#failedCommits,
      staged: this.#log.length + this.#pending.length,
      unavailable: this.#unavailable,
    };
  }

  /** Closes the store; a batch not committed is rolled back. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#rollback();
    this.#db.close();
  }

  #statement(sql: string): StatementSync {
    let statement = this.#listCache.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#listCache.set(sql, statement);
    }
    return statement;
  }

  #open(what: string): void {
    if (this.#closed) throw new StoreError(`Cannot ${what}: the store is closed`);
  }
}

function groups(sql: ListSql): string[] {
  return [sql.waiting, sql.atScheduler, sql.finished];
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0]!;
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`Cannot open store: '${name}' must be a positive integer, got ${value}`);
  }
  return value;
}

const encoder = new TextEncoder();

function utf8Bytes(text: string): number {
  // deno-lint-ignore no-control-regex
  return /^[\x00-\x7f]*$/.test(text) ? text.length : encoder.encode(text).byteLength;
}
