/**
 * The leader lock of a cluster of buses on one PostgreSQL (`docs/cluster.md`): a session-level
 * advisory lock held on a connection of its own (released when the bus dies: PostgreSQL ends the
 * session), an epoch counted up at each election and checked in every commit of the leader
 * (a bus that lost its session cannot write over the new leader: it is fenced), and each bus's
 * heartbeat, by which the leader knows when a bus is gone.
 *
 * @module
 */

import type { ReservedSql, Sql, TransactionSql } from "postgres";
import { StoreError } from "./store_errors.ts";

/** The advisory lock key of the cluster's leader. */
export const LEADER_LOCK = 7_201_302;

/** How often a bus beats (ms); a bus silent for 5 beats counts as gone. */
export const BEAT_MS = 1000;

/** A commit of a bus that no longer leads: another bus was elected since (a newer epoch). */
export class FencedError extends StoreError {
  /**
   * Creates the error.
   *
   * @param mine This bus's epoch.
   * @param now The epoch in the database.
   */
  constructor(readonly mine: number, readonly now: number) {
    super(`another bus leads now (epoch ${now}, this bus had ${mine})`);
    this.name = "FencedError";
  }
}

/**
 * One bus's side of the leader lock and the heartbeats.
 *
 * @example
 * ```ts ignore
 * const leadership = new PgLeadership(sql, "bus-a");
 * const epoch = await leadership.tryLead(async () => {});
 * console.log(epoch === undefined ? "follows" : `leads, epoch ${epoch}`);
 * await leadership.close();
 * ```
 */
export class PgLeadership {
  #sql: Sql;
  #bus: string;
  #conn: ReservedSql | undefined;
  #epoch: number | undefined;
  #beat: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /**
   * Creates it (see {@linkcode PgLeadership.start}).
   *
   * @param sql The store's connection pool.
   * @param bus This bus's id.
   */
  constructor(sql: Sql, bus: string) {
    this.#sql = sql;
    this.#bus = bus;
  }

  /** The bus beats from now on (once the store is open). */
  start(): void {
    if (this.#beat !== undefined || this.#closed) return;
    this.#beat = setInterval(() => void this.#beatOnce(), BEAT_MS);
    void this.#beatOnce();
  }

  /** The epoch of this bus's leadership, or undefined when it does not lead. */
  get epoch(): number | undefined {
    return this.#epoch;
  }

  /**
   * Tries the lock; on success counts the epoch up and runs `prepare` (the bus reads the whole
   * log before it acts as the leader).
   *
   * @param prepare What to do once the lock is held, before leading.
   * @returns The new epoch, or undefined when another bus holds the lock.
   */
  async tryLead(prepare: () => Promise<void>): Promise<number | undefined> {
    if (this.#closed) return undefined;
    if (this.#epoch !== undefined) return this.#epoch;
    this.#conn ??= await this.#sql.reserve();
    const [row] = await this.#conn`SELECT pg_try_advisory_lock(${LEADER_LOCK}) AS ok`;
    if (row?.ok !== true) return undefined;
    const [epoch] = await this.#sql`INSERT INTO meta VALUES ('leader_epoch', 1)
      ON CONFLICT (key) DO UPDATE SET value = meta.value + 1 RETURNING value`;
    await prepare();
    this.#epoch = Number(epoch!.value);
    return this.#epoch;
  }

  /**
   * In the leader's commit transaction: fails it when another bus was elected since.
   *
   * @param tx The transaction.
   * @throws {FencedError} If the database's epoch is not this bus's.
   */
  async fence(tx: TransactionSql): Promise<void> {
    const mine = this.#epoch;
    if (mine === undefined) return;
    const [row] = await tx`SELECT value FROM meta WHERE key = 'leader_epoch' FOR SHARE`;
    const now = Number(row?.value ?? 0);
    if (now !== mine) throw new FencedError(mine, now);
  }

  /** This bus no longer leads (fenced): forgets the epoch, lets its lock connection go. */
  lost(): void {
    this.#epoch = undefined;
    const conn = this.#conn;
    this.#conn = undefined;
    conn?.release();
  }

  /** Lets the lock go (a leader that stops). */
  async resign(): Promise<void> {
    const conn = this.#conn;
    this.#epoch = undefined;
    this.#conn = undefined;
    if (!conn) return;
    await conn`SELECT pg_advisory_unlock(${LEADER_LOCK})`.catch(() => {});
    conn.release();
  }

  /**
   * The buses that stopped beating (5 beats), forgotten once returned (the leader's view).
   *
   * @returns Their ids.
   */
  async goneBuses(): Promise<string[]> {
    const rows = await this.#sql`DELETE FROM buses
      WHERE beat < now() - make_interval(secs => ${(5 * BEAT_MS) / 1000}) AND id <> ${this.#bus}
      RETURNING id`;
    return rows.map((row) => String(row.id));
  }

  /**
   * Forgets the `changes` rows older than `ms` (the leader, now and then): every live bus read
   * them long ago (a bus that starts reads the tables, not the log).
   *
   * @param ms The age beyond which rows go.
   * @returns How many rows went.
   */
  async pruneLog(ms: number): Promise<number> {
    const rows = await this.#sql`DELETE FROM changes
      WHERE at < now() - make_interval(secs => ${ms / 1000}) RETURNING id`;
    return rows.length;
  }

  /** Stops beating, resigns, says goodbye. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#beat);
    await this.resign();
    await this.#sql`DELETE FROM buses WHERE id = ${this.#bus}`.catch(() => {});
  }

  async #beatOnce(): Promise<void> {
    if (this.#closed) return;
    await this.#sql`INSERT INTO buses VALUES (${this.#bus}, now())
      ON CONFLICT (id) DO UPDATE SET beat = now()`.catch(() => {});
  }
}
