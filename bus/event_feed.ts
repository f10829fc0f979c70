/**
 * Job events to producers and monitors without ever losing one: each reader has a cursor (the
 * `seq` of the last event sent to it); a reader too slow for live events (its send buffer is
 * full) falls behind and is later caught up from the store, page by page, as its buffer drains.
 *
 * @module
 */

import type { JobStore, StoredEvent } from "./job_store.ts";

/** One reader of events: a producer's connection (its owner's events) or a monitor's (all). */
export interface EventReader {
  /** Whose events it reads; undefined for all (a monitor). */
  readonly owner: string | undefined;
  /** The `seq` of the last event sent to it. */
  cursor: number;
  /** Whether it missed live events that must be read from the store. */
  behind: boolean;
  /** Whether its send buffer can take more now. */
  canTake(): boolean;
  /** Sends one event (the reader encodes it: ids scoped per owner). */
  take(event: StoredEvent): void;
}

/** Options for {@linkcode EventFeed}. */
export interface EventFeedOptions {
  /**
   * Events read from the store per page while catching a reader up.
   * @default {500}
   */
  pageSize?: number;
}

/**
 * Catches readers up from the store. The caller sends live events through
 * {@linkcode EventFeed.offer} and calls {@linkcode EventFeed.catchUp} when the store holds no
 * uncommitted event (after a commit) and from a timer while {@linkcode EventFeed.lagging}.
 *
 * @example
 * ```ts
 * import { EventFeed, type EventReader } from "./event_feed.ts";
 * import { SqliteStore } from "./sqlite_store.ts";
 * const store = new SqliteStore({ path: ":memory:" });
 * store.accept({
 *   id: "j1", owner: "ann", givenId: true, payload: { priority: 3, runtime: 1 }, seq: 0, at: 1,
 * });
 * const seq = store.event({
 *   cmd: "event", id: "j1", state: "queued", at: 1, priority: 3, owner: "ann",
 * });
 * store.commit();
 * const got: number[] = [];
 * const reader: EventReader = {
 *   owner: "ann", cursor: 0, behind: true, canTake: () => true,
 *   take: (event) => got.push(event.seq),
 * };
 * const feed = new EventFeed(store);
 * feed.add(reader);
 * feed.catchUp();
 * console.log(got, seq, reader.behind); // [1] 1 false
 * store.close();
 * ```
 */
export class EventFeed {
  #store: JobStore;
  #pageSize: number;
  #behind = new Set<EventReader>();

  /**
   * Creates the feed.
   *
   * @param store Where past events are read from.
   * @param options See {@linkcode EventFeedOptions}.
   */
  constructor(store: JobStore, options: EventFeedOptions = {}) {
    this.#store = store;
    this.#pageSize = options.pageSize ?? 500;
  }

  /** Whether some reader is behind (call {@linkcode EventFeed.catchUp} again later). */
  get lagging(): boolean {
    return this.#behind.size > 0;
  }

  /**
   * Follows a reader; one already `behind` (it registered with `after`) is caught up by the
   * next {@linkcode EventFeed.catchUp}.
   *
   * @param reader The reader.
   */
  add(reader: EventReader): void {
    if (reader.behind) this.#behind.add(reader);
  }

  /**
   * Stops following a reader (its connection closed).
   *
   * @param reader The reader.
   */
  remove(reader: EventReader): void {
    this.#behind.delete(reader);
  }

  /**
   * A live event for a reader: sent if the reader is up to date and can take it; otherwise the
   * reader is (or stays) behind and reads it from the store later. An event at or before its
   * cursor (already sent by a catch-up) is skipped.
   *
   * @param reader The reader.
   * @param event The event, committed or held until its commit by the caller.
   */
  offer(reader: EventReader, event: StoredEvent): void {
    if (reader.behind || event.seq <= reader.cursor) return;
    if (!reader.canTake()) {
      reader.behind = true;
      this.#behind.add(reader);
      return;
    }
    reader.cursor = event.seq;
    reader.take(event);
  }

  /**
   * Sends readers that are behind what they missed, while their buffers take it; a reader that
   * reaches the store's last event is up to date again. Call it only when every event in the
   * store is committed.
   */
  catchUp(): void {
    for (const reader of this.#behind) {
      while (reader.canTake()) {
        const events = this.#store.eventsAfter(reader.cursor, reader.owner, this.#pageSize);
        for (const event of events) {
          reader.cursor = event.seq;
          reader.take(event);
        }
        if (events.length < this.#pageSize) {
          reader.behind = false;
          this.#behind.delete(reader);
          break;
        }
      }
    }
  }
}
