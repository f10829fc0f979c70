/**
 * Where the bus's job events go: to the v2 producers of the job's owner and to every monitor,
 * each through its event cursor (`event_feed.ts`), after the answer to the request that caused
 * them.
 *
 * @module
 */

import type { Clock, TimerId } from "../core/clock.ts";
import type { BusConn } from "./bus_conn.ts";
import type { DispatcherJobEvent } from "./dispatcher_types.ts";
import { EventFeed, type EventReader } from "./event_feed.ts";
import type { JobStore, StoredEvent } from "./job_store.ts";
import { withClientId } from "./owner_scope.ts";
import { encodeMessage, type ServerMessage } from "./protocol.ts";

/** How often readers that fell behind are caught up (ms). */
const CATCH_UP_MS = 20;

/** What {@linkcode EventRouter} needs from the server. */
export interface EventRouterOptions {
  /** The store the events are numbered and kept in. */
  store: JobStore;
  /** Where the catch-up timer comes from. */
  clock: Clock;
  /** A reader's send-buffer level above which it falls behind. */
  maxBuffered: number;
  /** Sends a frame to a connection (held until its commit, see `CommitGate`). */
  send: (conn: BusConn, text: string) => void;
  /** Whether the store holds uncommitted writes (no catch-up then). */
  dirty: () => boolean;
  /** Called with each event before it goes to the readers (the server's `job` event). */
  onEvent: (event: DispatcherJobEvent) => void;
}

/**
 * Keeps the v2 producers by owner and the monitors, and routes job events to them without
 * losing one (see {@linkcode EventFeed}).
 *
 * @example
 * ```ts
 * import { EventRouter } from "./event_router.ts";
 * import { SqliteStore } from "./sqlite_store.ts";
 * import { systemClock } from "../core/clock.ts";
 * const store = new SqliteStore({ path: ":memory:" });
 * const router = new EventRouter({
 *   store, clock: systemClock, maxBuffered: 1 << 20, send: () => {}, dirty: () => false,
 *   onEvent: () => {},
 * });
 * console.log(router.wants("ann")); // false: no producer of ann's, no monitor
 * router.close();
 * store.close();
 * ```
 */
export class EventRouter {
  #owners = new Map<string, Set<BusConn>>(); // v2 producers by owner
  #monitors = new Set<BusConn>();
  #feed: EventFeed;
  #options: EventRouterOptions;
  #pending: DispatcherJobEvent[] = []; // events to forward after the current message
  #timer: TimerId | undefined;
  #encoded: { event: StoredEvent; text: string } | undefined;
  #closed = false;

  /**
   * Creates the router.
   *
   * @param options See {@linkcode EventRouterOptions}.
   */
  constructor(options: EventRouterOptions) {
    this.#options = options;
    this.#feed = new EventFeed(options.store);
  }

  /** How many monitors are registered. */
  get monitors(): number {
    return this.#monitors.size;
  }

  /**
   * The v2 producer connections of an owner.
   *
   * @param owner The owner.
   * @returns Its connections (empty when none).
   */
  producersOf(owner: string): ReadonlySet<BusConn> {
    return this.#owners.get(owner) ?? new Set();
  }

  /**
   * Whether an event of this owner's jobs would reach anyone.
   *
   * @param owner The job's owner.
   * @returns True when one of its producers or a monitor is connected.
   */
  wants(owner: string): boolean {
    return this.#owners.has(owner) || this.#monitors.size > 0;
  }

  /**
   * Follows a registered v2 producer or monitor: live events from now, or every event after
   * `after` first (from the store), or — when the store does not have them all — a `resync`.
   *
   * @param conn The connection (role `producer` or `monitor`).
   * @param after Its resume point, if it gave one.
   */
  follow(conn: BusConn, after: number | undefined): void {
    if (conn.role === "monitor") this.#monitors.add(conn);
    else {
      const set = this.#owners.get(conn.owner) ?? new Set();
      this.#owners.set(conn.owner, set.add(conn));
    }
    const store = this.#options.store;
    let cursor = after ?? store.lastSeq;
    const gone = after === undefined
      ? undefined
      : after < store.firstSeq - 1
      ? `events before seq ${store.firstSeq} are no longer kept`
      : after > store.lastSeq
      ? `no events after seq ${store.lastSeq} here (a bus restarted without its store?)`
      : undefined;
    if (gone !== undefined) {
      this.#sendMessage(conn, { cmd: "resync", reason: gone, seq: store.lastSeq });
      cursor = store.lastSeq;
    }
    const socket = conn.socket;
    const reader: EventReader = conn.reader = {
      owner: conn.role === "monitor" ? undefined : conn.owner,
      cursor,
      behind: cursor < store.lastSeq,
      canTake: () => socket.bufferedAmount <= this.#options.maxBuffered,
      take: (event) => this.#options.send(conn, this.#text(conn, event)),
    };
    this.#feed.add(reader);
    if (reader.behind) this.#schedule();
  }

  /**
   * Forgets a closed connection.
   *
   * @param conn The connection.
   */
  drop(conn: BusConn): void {
    this.#monitors.delete(conn);
    const owned = this.#owners.get(conn.owner);
    if (owned?.delete(conn) && owned.size === 0) this.#owners.delete(conn.owner);
    if (conn.reader) this.#feed.remove(conn.reader);
  }

  /**
   * Takes a job event (numbered by the store); it is routed after the current message, so
   * that the answer to a request goes out before the events it causes.
   *
   * @param event The event.
   * @param wanted Whether the server itself wants it (its `job` event) even with no reader.
   */
  defer(event: DispatcherJobEvent, wanted: boolean): void {
    if (!wanted && !this.wants(event.owner)) return;
    if (this.#pending.push(event) === 1) queueMicrotask(() => this.#forwardPending());
  }

  /** After a commit: catches up readers that fell behind (once the held outputs are out). */
  committed(): void {
    if (this.#feed.lagging) queueMicrotask(() => this.#catchUp());
  }

  /** Stops the catch-up timer. Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #forwardPending(): void {
    const events = this.#pending;
    this.#pending = [];
    for (const event of events) this.#forward(event);
  }

  #forward(event: DispatcherJobEvent): void {
    this.#options.onEvent(event);
    const owners = this.#owners.get(event.owner);
    if (!owners && !this.#monitors.size) return;
    const stored = event as StoredEvent; // numbered by the store
    for (const conn of owners ?? []) if (conn.reader) this.#feed.offer(conn.reader, stored);
    for (const conn of this.#monitors) if (conn.reader) this.#feed.offer(conn.reader, stored);
  }

  /** An event's frame for a connection: bus-wide ids, or a scoped owner's own. */
  #text(conn: BusConn, event: StoredEvent): string {
    const { owner: _owner, ...wire } = event;
    if (conn.scope) return encodeMessage(withClientId(conn.scope, wire));
    if (this.#encoded?.event !== event) this.#encoded = { event, text: encodeMessage(wire) };
    return this.#encoded.text;
  }

  #sendMessage(conn: BusConn, message: ServerMessage): void {
    this.#options.send(conn, encodeMessage(message));
  }

  /** Catches lagging readers up, once the store holds no uncommitted event. */
  #catchUp(): void {
    if (this.#closed || !this.#feed.lagging) return;
    if (!this.#options.dirty()) this.#feed.catchUp();
    if (this.#feed.lagging) this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#catchUp();
    }, CATCH_UP_MS);
  }
}
