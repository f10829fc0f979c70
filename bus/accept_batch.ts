/**
 * What the bus owes its clients once a batch of store writes is committed: the `accepted`
 * answers of the batch's new jobs (or `rejected` "store unavailable" when the commit failed),
 * and the `reported` acknowledgements of the schedulers' final reports it stored.
 *
 * @module
 */

import type { BusConn } from "./bus_conn.ts";
import type { JobPlacer } from "./job_placer.ts";
import type { CommitResult } from "./job_store.ts";
import { toClientId } from "./owner_scope.ts";
import type { ServerMessage } from "./protocol.ts";

/** What {@linkcode AcceptBatch} needs from the server. */
export interface AcceptBatchOptions {
  /** The placer in charge (it prepared the jobs, and admits or abandons them). */
  placer: () => JobPlacer;
  /** Sends a message now (the batch is committed: nothing to hold it for). */
  write: (conn: BusConn, message: ServerMessage) => void;
  /** Answers a job request `rejected` (and reports the rejection like any other). */
  reject: (conn: BusConn, id: string, reason: string) => void;
  /** A line for the operator: the store failed, or works again. */
  warn: (line: string) => void;
}

/** A job request waiting for its commit; its answer is written in its place among the outputs. */
export interface PendingAnswer {
  /** The producer's connection. */
  conn: BusConn;
  /** The job (bus-wide id). */
  id: string;
  /** Whether it repeats a prepared job. */
  duplicate: boolean;
  /** The answer, once the commit settled: a message, or a rejection's reason. */
  answer?: ServerMessage | { rejected: string };
}

/**
 * The job requests and final reports waiting for the current batch's commit.
 *
 * @example
 * ```ts
 * import { AcceptBatch } from "./accept_batch.ts";
 * import { Dispatcher } from "./dispatcher.ts";
 * const sent: string[] = [];
 * const dispatcher = new Dispatcher();
 * const batch = new AcceptBatch({
 *   placer: () => dispatcher,
 *   write: (_conn, message) => sent.push(message.cmd),
 *   reject: () => {},
 *   warn: () => {},
 * });
 * batch.committed({ ok: true, ms: 1, writes: 0 });
 * console.log(sent, batch.storeAvailable); // [] true
 * ```
 */
export class AcceptBatch {
  #accepts: PendingAnswer[] = [];
  #acks = new Map<BusConn, string[]>();
  #sealed: { accepts: PendingAnswer[]; acks: Map<BusConn, string[]> } = {
    accepts: [],
    acks: new Map(),
  };
  #options: AcceptBatchOptions;
  #failing = false;

  /**
   * Creates an empty batch.
   *
   * @param options See {@linkcode AcceptBatchOptions}.
   */
  constructor(options: AcceptBatchOptions) {
    this.#options = options;
  }

  /** False while the store's commits fail (new jobs are then rejected). */
  get storeAvailable(): boolean {
    return !this.#failing;
  }

  /** Whether answers wait for a commit. */
  get pending(): boolean {
    return this.#accepts.length > 0 || this.#acks.size > 0 ||
      this.#sealed.accepts.length > 0 || this.#sealed.acks.size > 0;
  }

  /**
   * A job request to answer after the commit: a new job the dispatcher prepared, or a
   * duplicate of one still prepared.
   *
   * @param conn The producer's connection.
   * @param id The job (bus-wide id).
   * @param duplicate Whether it repeats a prepared job.
   * @returns The pending answer: hand it to {@linkcode AcceptBatch.answer} in its place among
   * the outputs held for the commit.
   */
  accept(conn: BusConn, id: string, duplicate: boolean): PendingAnswer {
    const pending: PendingAnswer = { conn, id, duplicate };
    this.#accepts.push(pending);
    return pending;
  }

  /**
   * Writes a job request's answer, once its commit settled (an output held until then, in the
   * order of the requests).
   *
   * @param pending What {@linkcode AcceptBatch.accept} returned.
   */
  answer(pending: PendingAnswer): void {
    const answer = pending.answer;
    if (answer === undefined) return; // the bus closed first
    if ("rejected" in answer) {
      this.#options.reject(
        pending.conn,
        toClientId(pending.conn.scope, pending.id),
        answer.rejected,
      );
    } else if (pending.conn.protocol === 2) this.#options.write(pending.conn, answer);
  }

  /** A commit starts: what is owed so far is for it; later requests wait for the next one. */
  seal(): void {
    this.#sealed.accepts.push(...this.#accepts);
    for (const [conn, ids] of this.#acks) {
      const sealed = this.#sealed.acks.get(conn);
      if (sealed) sealed.push(...ids);
      else this.#sealed.acks.set(conn, ids);
    }
    this.#accepts = [];
    this.#acks = new Map();
  }

  /**
   * A v2 scheduler's final report to acknowledge (`reported`) once stored.
   *
   * @param conn The scheduler's connection.
   * @param id The job.
   */
  ack(conn: BusConn, id: string): void {
    const ids = this.#acks.get(conn);
    if (ids) ids.push(id);
    else this.#acks.set(conn, [id]);
  }

  /**
   * Forgets a closed connection's acknowledgements.
   *
   * @param conn The connection.
   */
  drop(conn: BusConn): void {
    this.#acks.delete(conn);
    this.#sealed.acks.delete(conn);
  }

  /**
   * After a commit: admits the batch's new jobs and answers them `accepted` (or, when the
   * commit failed, abandons them and answers `rejected` with the store's reason), then
   * acknowledges the stored reports (kept for the next commit when this one failed).
   *
   * @param result The commit's result.
   */
  committed(result: CommitResult): void {
    const { write, warn } = this.#options;
    const dispatcher = this.#options.placer();
    const { accepts, acks } = this.#sealed;
    this.#sealed = { accepts: [], acks: new Map() };
    const fresh = accepts.filter((accept) => !accept.duplicate).map((accept) => accept.id);
    if (!result.ok) {
      if (!this.#failing) warn(`${result.reason}: new jobs are rejected until it works`);
      this.#failing = true;
      dispatcher.abandon(fresh);
      for (const pending of accepts) pending.answer = { rejected: result.reason };
      // The reports wait for a commit that works (the store keeps their writes).
      for (const [conn, ids] of acks) this.#acks.set(conn, [...ids, ...this.#acks.get(conn) ?? []]);
      return;
    }
    if (this.#failing) warn("store available again");
    this.#failing = false;
    const waiting = dispatcher.admit(fresh);
    let i = 0;
    for (const pending of accepts) {
      const { conn, id } = pending;
      pending.answer = pending.duplicate
        ? acceptedMessage(dispatcher, conn, id)
        : acceptedMessage(dispatcher, conn, id, { waiting: waiting[i++] });
    }
    for (const [conn, ids] of acks) write(conn, { cmd: "reported", ids });
  }
}

/**
 * The `accepted` answer for a job: a new one's (with why it waits), or a duplicate's (its
 * state now, as the dispatcher or the store knows it).
 *
 * @param dispatcher The bus's placer (a `Dispatcher`).
 * @param conn The producer's connection (its scope gives the job's id as it knows it).
 * @param id The job (bus-wide id).
 * @param fresh For a new job: why it waits, if it waits with nothing to run it.
 * @returns The message.
 * @example
 * ```ts
 * import { acceptedMessage } from "./accept_batch.ts";
 * import { Dispatcher } from "./dispatcher.ts";
 * import type { BusConn } from "./bus_conn.ts";
 * const conn = { scope: undefined } as BusConn;
 * const fresh = { waiting: "no scheduler connected" };
 * console.log(acceptedMessage(new Dispatcher(), conn, "j1", fresh));
 * // { cmd: "accepted", id: "j1", waiting: "no scheduler connected" }
 * ```
 */
export function acceptedMessage(
  dispatcher: JobPlacer,
  conn: BusConn,
  id: string,
  fresh?: { waiting: string | undefined },
): ServerMessage {
  const clientId = toClientId(conn.scope, id);
  if (fresh) {
    const waiting = fresh.waiting === undefined ? {} : { waiting: fresh.waiting };
    return { cmd: "accepted", id: clientId, ...waiting };
  }
  const { final, ...known } = dispatcher.known(id) ?? { state: "queued", final: false };
  return { cmd: "accepted", duplicate: true, id: clientId, ...known, ...(final ? { final } : {}) };
}
