/**
 * `PostgresStore`: the bus's {@linkcode JobStore} on PostgreSQL (`--store postgres://…`). Every
 * synchronous read is served by an in-memory `SqliteStore` mirror loaded at open and fed by
 * every write at once; `commit()` is one PostgreSQL transaction (a Promise). The only module that
 * imports `npm:postgres`: the core and the default set-up stay free of dependencies (`mod.ts`
 * does not export it; `bus/main.ts` imports it dynamically). See `docs/store.md`, "PostgreSQL".
 *
 * @module
 */

import type { StatementSync } from "node:sqlite";
import postgres, { type JSONValue, type Sql, type TransactionSql } from "postgres";
import type { DispatcherJobEvent } from "./dispatcher_types.ts";
import type {
  CommitResult,
  JobQuery,
  NewJob,
  StoredEvent,
  StoredJob,
  StoreStats,
} from "./job_store.ts";
import type { JobDetails, JobList } from "./protocol.ts";
import { type MirrorAccess, mirrorAccess, SqliteStore } from "./sqlite_store.ts";
import { StoreError } from "./store_errors.ts";
import { migratePg } from "./pg_schema.ts";
import { FencedError, PgLeadership } from "./pg_leadership.ts";
import type { ClusterBatch, ClusterMail, ClusterStore } from "./cluster_mail.ts";
import {
  type LoggedBatch,
  type RemoteBatch,
  type Row,
  type StoreWrite,
  writeJob,
} from "./pg_changes.ts";

export type { RemoteBatch, StoreWrite };

/** Options for {@linkcode PostgresStore.open}. */
export interface PostgresStoreOptions {
  /** `postgres://USER[:PASSWORD]@HOST:PORT/DB`. */
  url: string;
  /** This bus's name in the `changes` log. @default {a random one} */
  busId?: string;
  /** Finished jobs kept (as {@linkcode SqliteStore}'s `keepFinished`); bounds the mirror too. */
  keepFinished?: { ms?: number; count?: number };
  /** Largest `list` answer, bytes of JSON. @default {1_000_000} */
  maxListBytes?: number;
  /** Seconds to wait for a connection. @default {5} */
  connectTimeout?: number;
}

/**
 * The bus's store on PostgreSQL (see the module doc and {@linkcode JobStore}).
 *
 * @example
 * ```ts ignore
 * import { PostgresStore } from "./postgres_store.ts";
 * const store = await PostgresStore.open({ url: "postgres://postgres@127.0.0.1:5432/sched" });
 * store.accept({ id: "j", owner: "ann", givenId: true, payload: { priority: 1, runtime: 1 }, seq: 0, at: 5 });
 * console.log((await store.commit()).ok, store.get("j")?.seq); // true 0
 * await store.close();
 * ```
 */
export class PostgresStore implements ClusterStore {
  /** Job seqs are PostgreSQL's, given at commit (read them back after it). */
  readonly assignsJobSeq = true;
  readonly #sql: Sql;
  readonly #mirror: SqliteStore;
  readonly #raw: MirrorAccess;
  readonly #bus: string;
  readonly #location: string;
  readonly #keep: { ms: number; count: number };
  #batch: StoreWrite[] = [];
  #kept: StoreWrite[] = [];
  #chain: Promise<unknown> = Promise.resolve();
  #tail = 0;
  #pulling: Promise<void> | undefined;
  #pullAgain = false;
  #remote: ((batch: RemoteBatch) => void) | undefined;
  #unlisten: (() => Promise<void>) | undefined;
  readonly #statements = new Map<string, StatementSync>();
  #commits = 0;
  #failedCommits = 0;
  #unavailable = false;
  #closed: Promise<void> | undefined;
  #leadership: PgLeadership;
  #deposed: (() => void)[] = [];

  private constructor(sql: Sql, mirror: SqliteStore, bus: string, location: string, keep: {
    ms: number;
    count: number;
  }) {
    this.#sql = sql;
    this.#mirror = mirror;
    this.#raw = mirrorAccess(mirror);
    this.#bus = bus;
    this.#location = location;
    this.#keep = keep;
    this.#leadership = new PgLeadership(sql, bus);
  }

  /**
   * Connects, creates or migrates the schema, and loads the mirror.
   *
   * @param options See {@linkcode PostgresStoreOptions}.
   * @returns The open store.
   * @throws {StoreError} If PostgreSQL cannot be reached, or its schema is newer than this code.
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const location = redact(options.url);
    const keep = {
      ms: options.keepFinished?.ms ?? 7 * 86_400_000,
      count: options.keepFinished?.count ?? 100_000,
    };
    const mirror = new SqliteStore({
      path: ":memory:",
      keepFinished: keep,
      ...(options.maxListBytes === undefined ? {} : { maxListBytes: options.maxListBytes }),
    });
    const sql = postgres(options.url, {
      max: POOL_SIZE,
      connect_timeout: options.connectTimeout ?? 5,
      onnotice: () => {},
      idle_timeout: 0,
      max_lifetime: null,
    });
    const store = new PostgresStore(
      sql,
      mirror,
      options.busId ?? crypto.randomUUID().slice(0, 8),
      location,
      keep,
    );
    try {
      await migratePg(sql);
      await store.#load();
      store.#leadership.start();
    } catch (error) {
      mirror.close();
      await sql.end({ timeout: 0 }).catch(() => {});
      if (error instanceof StoreError) throw error;
      throw new StoreError(`Cannot open store: PostgreSQL at ${location}: ${describe(error)}`);
    }
    return store;
  }

  /** Loads unfinished jobs, finished ones within keepFinished, their events, the counters. */
  async #load(): Promise<void> {
    const old = Date.now() - this.#keep.ms;
    const loaded = await this.#sql.begin("isolation level repeatable read", async (tx) => {
      const meta = await tx`SELECT key, value FROM meta`;
      const jobs = await tx`SELECT "row" FROM jobs WHERE NOT final
        UNION ALL (SELECT "row" FROM jobs WHERE final AND ended_at >= ${old}
          ORDER BY ended_seq DESC LIMIT ${this.#keep.count})`;
      const ids = jobs.map((r) => String((r.row as Row).id));
      const events = await tx`SELECT e."row" FROM events e WHERE e.job_id = ANY(${ids})
        OR NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = e.job_id) ORDER BY e.seq`;
      const tail = await tx`SELECT coalesce(max(id), 0) AS m FROM changes`;
      return { meta: [...meta], jobs: [...jobs], events: [...events], tail: tail[0]!.m };
    });
    const { db } = this.#raw;
    db.exec("BEGIN");
    for (const r of loaded.jobs) this.#putJob(r.row as Row);
    for (const r of loaded.events) this.#putEvent(r.row as Row);
    for (const r of loaded.meta) {
      db.prepare("INSERT OR REPLACE INTO meta VALUES (?, ?)").run(String(r.key), Number(r.value));
    }
    db.exec("COMMIT");
    this.#raw.reload();
    this.#tail = Number(loaded.tail);
  }

  #putJob(row: Row): void {
    this.#put("INSERT OR REPLACE INTO jobs", row);
  }

  #putEvent(row: Row): void {
    this.#put("INSERT OR IGNORE INTO events", row);
  }

  #put(insert: string, row: Row): void {
    const keys = Object.keys(row);
    const sql = `${insert} (${keys.join(", ")}) VALUES (${keys.map(() => "?").join(", ")})`;
    this.#prepared(sql).run(...keys.map((k) => row[k] as string | number | null));
  }

  /** A statement on the mirror's database, prepared once. */
  #prepared(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#raw.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Whether this bus holds the cluster's leader lock. */
  get leading(): boolean {
    return this.#leadership.epoch !== undefined;
  }

  /**
   * Stages a message to other buses in the current batch (see `cluster_mail.ts`).
   *
   * @param to `"leader"`, a bus id, or `"*"`.
   * @param message The message.
   */
  mail(to: string, message: ClusterMail): void {
    this.#batch.push({ op: "mail", to, message });
  }

  /**
   * Follows the other buses' batches (see {@linkcode PostgresStore.onRemote}), each handed over
   * as its events, its accepted jobs and its messages to this bus.
   *
   * @param callback Called with each batch, in log order, once the mirror has it.
   * @returns When it listens.
   */
  onBatch(callback: (batch: ClusterBatch) => void): Promise<void> {
    return this.onRemote((remote) => {
      const batch: ClusterBatch = { bus: remote.bus, events: [], accepted: [], mail: [] };
      for (const w of remote.writes) {
        if (w.op === "event") batch.events.push({ ...w.event, seq: w.seq });
        else if (w.op === "accept") batch.accepted.push(w.job.id);
        else if (w.op === "mail" && this.#forMe(w.to)) batch.mail.push(w.message);
      }
      callback(batch);
    });
  }

  #forMe(to: string): boolean {
    return to === "*" || to === this.#bus || (to === "leader" && this.leading);
  }

  /**
   * Tries the cluster's leader lock; once held, reads the whole log and PostgreSQL's last event
   * seq before this bus numbers events.
   *
   * @returns The new epoch, or undefined when another bus leads.
   */
  tryLead(): Promise<number | undefined> {
    return this.#leadership.tryLead(async () => {
      await this.#pull();
      const [row] = await this.#sql`SELECT greatest(
        (SELECT coalesce(max(seq), 0) FROM events),
        (SELECT value FROM meta WHERE key = 'last_seq')) AS s`;
      const last = Number(row?.s ?? 0);
      if (last > this.#mirror.lastSeq) {
        this.#raw.db.prepare("UPDATE meta SET value = ? WHERE key = 'last_seq'").run(last);
        this.#raw.reload();
      }
    });
  }

  /** Lets the leader lock go. */
  resign(): Promise<void> {
    return this.#leadership.resign();
  }

  /**
   * Called when a commit finds that another bus was elected since this one (it is fenced).
   *
   * @param callback Called once per loss.
   */
  onDeposed(callback: () => void): void {
    this.#deposed.push(callback);
  }

  /**
   * The buses that stopped beating (the leader asks, to take their schedulers' jobs back).
   *
   * @returns Their ids.
   */
  goneBuses(): Promise<string[]> {
    return this.#leadership.goneBuses();
  }

  /**
   * Forgets the `changes` rows older than `ms` (see `PgLeadership.pruneLog`).
   *
   * @param ms The age beyond which rows go.
   * @returns How many rows went.
   */
  pruneLog(ms: number): Promise<number> {
    return this.#leadership.pruneLog(ms);
  }

  /** This bus's name in the `changes` log. */
  get busId(): string {
    return this.#bus;
  }

  /** The latest event's `seq` (0 when none). */
  get lastSeq(): number {
    return this.#mirror.lastSeq;
  }

  /** The oldest event's `seq` that may still be kept. */
  get firstSeq(): number {
    return this.#mirror.firstSeq;
  }

  /** The greatest acceptance `seq` known (-1 when none). */
  get lastJobSeq(): number {
    return this.#mirror.lastJobSeq;
  }

  /**
   * Stages a new job (its `seq` is provisional: PostgreSQL assigns the real one at commit).
   *
   * @param job The job.
   * @throws {StoreError} If a job with this id exists and has not ended.
   */
  accept(job: NewJob): void {
    this.#mirror.accept(job);
    this.#batch.push({ op: "accept", job });
  }

  /**
   * Stages a job event (see {@linkcode JobStore.event}).
   *
   * @param event The dispatcher's event.
   * @returns Its `seq`.
   */
  event(event: DispatcherJobEvent): number {
    const seq = this.#mirror.event(event);
    this.#batch.push({ op: "event", event, seq });
    return seq;
  }

  /**
   * Stages a hand-over.
   *
   * @param id The job.
   * @param scheduler The scheduler.
   * @param attempt Hand-overs so far.
   */
  dispatched(id: string, scheduler: string, attempt: number): void {
    this.#mirror.dispatched(id, scheduler, attempt);
    this.#batch.push({ op: "dispatched", id, scheduler, attempt });
  }

  /**
   * Stages a waiting job's new priority.
   *
   * @param id The job.
   * @param priority Its priority.
   */
  setPriority(id: string, priority: number): void {
    this.#mirror.setPriority(id, priority);
    this.#batch.push({ op: "setPriority", id, priority });
  }

  /**
   * Stages a retry's bookkeeping.
   *
   * @param id The job.
   * @param failures Failed attempts used.
   * @param lastResult The failed attempt's result.
   */
  retried(id: string, failures: number, lastResult: Record<string, unknown> | undefined): void {
    this.#mirror.retried(id, failures, lastResult);
    this.#batch.push({ op: "retried", id, failures, lastResult: lastResult ?? null });
  }

  /**
   * Stages the forgetting of finished jobs beyond keepFinished (in the mirror at once).
   *
   * @param now The time, epoch ms.
   * @returns How many jobs it forgot.
   */
  prune(now: number): number {
    const { db } = this.#raw;
    const cut = Number(
      db.prepare(
        "SELECT ended_seq FROM jobs WHERE final = 1 ORDER BY ended_seq DESC LIMIT 1 OFFSET ?",
      ).get(this.#keep.count)?.ended_seq ?? -1,
    );
    const ids = db.prepare(
      "SELECT id FROM jobs WHERE final = 1 AND (ended_seq <= ? OR ended_at < ?)",
    ).all(cut, now - this.#keep.ms).map((r) => String(r.id));
    const forgot = this.#mirror.prune(now);
    this.#batch.push({ op: "prune", now, ids });
    return forgot;
  }

  /**
   * Commits the staged writes: the mirror at once, PostgreSQL in one transaction (which also
   * appends the batch to `changes` and notifies `sched_changes`). Commits run one after the
   * other. A failed one rejects the batch's acceptances (gone from the mirror too) and keeps the
   * other writes for the next commit.
   *
   * @returns The outcome (a Promise unless there was nothing to commit); never rejects.
   */
  commit(): CommitResult | Promise<CommitResult> {
    if (this.#closed !== undefined) throw new StoreError("Cannot commit: the store is closed");
    this.#mirror.commit(); // in memory: cannot fail
    const writes = [...this.#kept, ...this.#batch];
    this.#kept = [];
    this.#batch = [];
    if (writes.length === 0) return { ok: true, ms: 0, writes: 0 };
    const run = this.#chain.then(() => this.#commitPg(writes));
    this.#chain = run;
    return run;
  }

  async #commitPg(writes: StoreWrite[]): Promise<CommitResult> {
    const start = performance.now();
    try {
      // A connection the server closed (it restarted) fails at once, before anything is
      // written: the pool's next one is tried (each of its 4 at most).
      for (let tries = 1;; tries++) {
        try {
          await this.#sql.begin((tx) => this.#apply(tx, writes));
          break;
        } catch (error) {
          if (tries >= POOL_SIZE || !isStaleConnection(error)) throw error;
        }
      }
      this.#commits++;
      this.#unavailable = false;
      return { ok: true, ms: performance.now() - start, writes: writes.length };
    } catch (error) {
      if (error instanceof FencedError) {
        this.#leadership.lost();
        for (const callback of this.#deposed) queueMicrotask(callback);
      }
      this.#commits++;
      this.#failedCommits++;
      this.#unavailable = true;
      const rejected = writes.flatMap((w) => w.op === "accept" ? [w.job.id] : []);
      const gone = new Set(rejected);
      this.#forget(writes, gone);
      this.#kept = [
        ...writes.filter((w) => w.op !== "accept" && !gone.has(writeJob(w))),
        ...this.#kept,
      ];
      return { ok: false, reason: `store unavailable: ${describe(error)}`, rejected };
    }
  }

  /** Removes rejected jobs (and their events of the batch) from the mirror. */
  #forget(writes: StoreWrite[], gone: Set<string>): void {
    const { db } = this.#raw;
    for (const w of writes) {
      if (w.op === "event" && gone.has(w.event.id)) {
        db.prepare("DELETE FROM events WHERE seq = ?").run(w.seq);
      }
    }
    for (const id of gone) db.prepare("DELETE FROM jobs WHERE id = ? AND final = 0").run(id);
  }

  /** The batch's transaction: job seqs, pruned rows, job and event rows, meta, the log. */
  async #apply(tx: TransactionSql, writes: StoreWrite[]): Promise<void> {
    // Statements that do not wait on each other's answers are pipelined (sent together on the
    // transaction's connection, in order): three round trips before COMMIT, not eight.
    const accepts = writes.filter((w) => w.op === "accept") as { op: "accept"; job: NewJob }[];
    const seqs = new Map<string, number>();
    const [, rows] = await Promise.all([
      this.#leadership.fence(tx), // a leader that was replaced writes nothing
      accepts.length === 0
        ? []
        : tx`SELECT nextval('job_seq') AS s FROM generate_series(1, ${accepts.length})`,
    ]);
    accepts.forEach((w, i) => seqs.set(w.job.id, Number(rows[i]!.s)));
    const touched = new Set<string>();
    const eventSeqs: number[] = [];
    const pruned = new Set<string>();
    for (const w of writes) {
      if (w.op === "prune") { for (const id of w.ids) pruned.add(id); }
      else if (w.op === "event") eventSeqs.push(w.seq);
      if (w.op !== "prune" && w.op !== "mail") touched.add(writeJob(w));
    }
    const jobs: Row[] = [];
    for (const id of touched) {
      const row = this.#prepared("SELECT * FROM jobs WHERE id = ?").get(id) as Row | undefined;
      if (row === undefined) continue;
      const seq = seqs.get(id);
      if (seq !== undefined) row.seq = seq;
      jobs.push(row);
    }
    const events = eventSeqs.length === 0 ? [] : this.#prepared(
      "SELECT * FROM events WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq",
    ).all(JSON.stringify(eventSeqs)) as Row[];
    const gone = [...pruned].filter((id) => !jobs.some((row) => row.id === id));
    const pending: PromiseLike<unknown>[] = [];
    if (gone.length > 0) {
      pending.push(tx`DELETE FROM events WHERE job_id = ANY(${gone})`);
      pending.push(tx`DELETE FROM jobs WHERE id = ANY(${gone}) AND final`);
    }
    if (jobs.length > 0) {
      pending.push(
        tx`INSERT INTO jobs (id, owner, seq, priority, final, at_scheduler, ended_seq, ended_at, "row")
        SELECT r->>'id', r->>'owner', (r->>'seq')::bigint, (r->>'priority')::float8,
          (r->>'final')::int = 1, (r->>'at_scheduler')::int = 1, (r->>'ended_seq')::bigint,
          (r->>'ended_at')::bigint, r
        FROM jsonb_array_elements(${tx.json(jobs as unknown as JSONValue)}::jsonb) r
        ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, seq = EXCLUDED.seq,
          priority = EXCLUDED.priority, final = EXCLUDED.final,
          at_scheduler = EXCLUDED.at_scheduler, ended_seq = EXCLUDED.ended_seq,
          ended_at = EXCLUDED.ended_at, "row" = EXCLUDED."row"`,
      );
    }
    if (events.length > 0) {
      pending.push(tx`INSERT INTO events (seq, job_id, owner, "row")
        SELECT (r->>'seq')::bigint, r->>'job_id', r->>'owner', r
        FROM jsonb_array_elements(${tx.json(events as unknown as JSONValue)}::jsonb) r
        ON CONFLICT (seq) DO NOTHING`);
    }
    const wanted = {
      last_seq: this.#mirror.lastSeq,
      last_job_seq: Math.max(-1, ...seqs.values()),
      pruned_floor: this.#mirror.firstSeq - 1,
    };
    const [now] = await Promise.all([
      tx`UPDATE meta
      SET value = GREATEST(value, (${tx.json(wanted)}::jsonb->>key)::bigint)
      WHERE key IN ('last_seq', 'last_job_seq', 'pruned_floor') RETURNING key, value`,
      ...pending,
    ]);
    const meta = { ...wanted };
    for (const row of now) meta[row.key as keyof typeof meta] = Number(row.value);
    const logged = writes.map((w) =>
      w.op === "accept" ? { ...w, job: { ...w.job, seq: seqs.get(w.job.id) ?? w.job.seq } } : w
    );
    const batch: LoggedBatch = { writes: logged, jobs, events, pruned: gone, meta };
    await Promise.all([
      tx`INSERT INTO changes (bus, batch)
      VALUES (${this.#bus}, ${tx.json(batch as unknown as JSONValue)}::jsonb)`,
      tx`SELECT pg_notify('sched_changes', ${this.#bus})`,
    ]);
    // Committed below: the mirror takes PostgreSQL's job seqs (a failed COMMIT leaves them
    // provisional; those jobs are rejected and removed anyway).
    const setSeq = this.#prepared("UPDATE jobs SET seq = ? WHERE id = ?");
    for (const [id, seq] of seqs) setSeq.run(seq, id);
    this.#setMeta(meta);
  }

  /** PostgreSQL's counters into the mirror's `meta` (`lastSeq` stays ahead if it is). */
  #setMeta(meta: LoggedBatch["meta"]): void {
    const set = this.#raw.db.prepare("UPDATE meta SET value = ? WHERE key = ?");
    for (const [key, value] of Object.entries(meta)) set.run(value, key);
    this.#raw.reload();
  }

  /**
   * Follows the `changes` log: the batches other buses commit (LISTEN `sched_changes`, then
   * read them after the last one applied) are applied to the mirror and handed to `callback`.
   *
   * @param callback Called with each remote batch, in log order, after the mirror has it.
   * @returns When it listens (batches committed before are read at once).
   */
  async onRemote(callback: (batch: RemoteBatch) => void): Promise<void> {
    this.#remote = callback;
    const listening = await this.#sql.listen("sched_changes", () => this.#pull());
    this.#unlisten = () => listening.unlisten();
    await this.#pull();
  }

  #pull(): Promise<void> {
    if (this.#pulling !== undefined) {
      this.#pullAgain = true;
      return this.#pulling;
    }
    this.#pulling = (async () => {
      do {
        this.#pullAgain = false;
        await this.#pullOnce().catch(() => {}); // the next notification tries again
      } while (this.#pullAgain && this.#closed === undefined);
      this.#pulling = undefined;
    })();
    return this.#pulling;
  }

  async #pullOnce(): Promise<void> {
    for (;;) {
      if (this.#closed !== undefined) return;
      const rows = await this.#sql`SELECT id, bus, batch FROM changes WHERE id > ${this.#tail}
        ORDER BY id LIMIT 500`;
      for (const row of rows) {
        this.#tail = Number(row.id);
        if (row.bus === this.#bus) continue;
        const batch = row.batch as LoggedBatch;
        this.#applyRemote(batch);
        this.#remote?.({ id: Number(row.id), bus: String(row.bus), writes: batch.writes });
      }
      if (rows.length < 500) return;
    }
  }

  #applyRemote(batch: LoggedBatch): void {
    const { db } = this.#raw;
    for (const id of batch.pruned) {
      db.prepare("DELETE FROM events WHERE job_id = ?").run(id);
      db.prepare("DELETE FROM jobs WHERE id = ? AND final = 1").run(id);
    }
    for (const row of batch.jobs) this.#putJob(row);
    for (const row of batch.events) this.#putEvent(row);
    this.#setMeta(batch.meta);
  }

  /**
   * A job, from the mirror.
   *
   * @param id The job.
   * @returns The job, or undefined.
   */
  get(id: string): StoredJob | undefined {
    return this.#mirror.get(id);
  }

  /**
   * The unfinished jobs in acceptance order.
   *
   * @returns The jobs.
   */
  unfinished(): StoredJob[] {
    return this.#mirror.unfinished();
  }

  /**
   * The jobs that match a query (see {@linkcode JobStore.list}).
   *
   * @param query The query.
   * @param waiting Why a waiting job waits.
   * @returns The summaries and the number of matches.
   */
  list(query: JobQuery, waiting?: (id: string) => string | undefined): JobList {
    return this.#mirror.list(query, waiting);
  }

  /**
   * One job's details and history.
   *
   * @param id The job.
   * @param waiting Why it waits.
   * @returns The details, or undefined.
   */
  show(id: string, waiting?: (id: string) => string | undefined): JobDetails | undefined {
    return this.#mirror.show(id, waiting);
  }

  /**
   * Events after `after`, of one owner or of all.
   *
   * @param after The last seq the reader has.
   * @param owner The owner, or undefined.
   * @param limit How many at most.
   * @returns The events.
   */
  eventsAfter(after: number, owner: string | undefined, limit: number): StoredEvent[] {
    return this.#mirror.eventsAfter(after, owner, limit);
  }

  /**
   * Counts (the mirror's), commits (PostgreSQL's).
   *
   * @returns The counts.
   */
  stats(): StoreStats {
    const mirror = this.#mirror.stats();
    return {
      ...mirror,
      kind: "postgres",
      location: this.#location,
      commits: this.#commits,
      failedCommits: this.#failedCommits,
      staged: this.#batch.length + this.#kept.length,
      unavailable: this.#unavailable,
    };
  }

  /**
   * Closes the store: waits for a commit under way, stops the tail, ends the connections.
   * Writes not committed are lost. Idempotent.
   *
   * @returns When the connections are closed.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#chain.catch(() => {});
      await this.#leadership.close();
      await this.#pulling;
      await this.#unlisten?.().catch(() => {});
      await this.#sql.end({ timeout: 1 });
      this.#mirror.close();
    })();
    return this.#closed;
  }
}

/** Connections in the pool. */
const POOL_SIZE = 4;

/** Whether an error is a pooled connection that the server had closed (nothing was sent). */
function isStaleConnection(error: unknown): boolean {
  const text = error instanceof Error
    ? `${error.message} ${(error as { code?: string }).code}`
    : "";
  return /socket has been ended by the other party|CONNECTION_(ENDED|CLOSED|DESTROYED)|EPIPE/
    .test(text);
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0]!;
}

/** The URL without its password. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    throw new StoreError(`Cannot open store: '${url}' is not a postgres:// URL`);
  }
}
