import assert from "node:assert/strict";
import { EventFeed, type EventReader } from "../../bus/event_feed.ts";
import { SqliteStore } from "../../bus/sqlite_store.ts";
import type { StoredEvent } from "../../bus/job_store.ts";

/** A store with `n` events of jobs of `ann` and `bob`, alternately; returns them. */
function storeWith(n: number): { store: SqliteStore; events: StoredEvent[] } {
  const store = new SqliteStore({ path: ":memory:" });
  const events: StoredEvent[] = [];
  for (let i = 0; i < n; i++) {
    const owner = i % 2 === 0 ? "ann" : "bob";
    const event = {
      cmd: "event" as const,
      id: `j${i}`,
      state: "queued" as const,
      at: i,
      priority: 3,
      owner,
    };
    events.push({ ...event, seq: store.event(event) });
  }
  assert.equal(store.commit().ok, true);
  return { store, events };
}

function reader(owner: string | undefined, room: () => boolean): EventReader & { got: number[] } {
  const got: number[] = [];
  return { owner, cursor: 0, behind: false, canTake: room, take: (e) => got.push(e.seq), got };
}

Deno.test("EventFeed: a reader that cannot take live events falls behind, then gets them all in order", () => {
  const { store, events } = storeWith(10);
  const feed = new EventFeed(store, { pageSize: 3 });
  let room = true;
  const mon = reader(undefined, () => room);
  feed.add(mon);
  feed.offer(mon, events[0]!);
  room = false;
  for (const event of events.slice(1, 6)) feed.offer(mon, event); // over its buffer: behind
  assert.equal(mon.behind, true);
  assert.equal(feed.lagging, true);
  room = true;
  for (const event of events.slice(6)) feed.offer(mon, event); // still behind: not sent live
  assert.deepEqual(mon.got, [1]);
  feed.catchUp();
  assert.deepEqual(mon.got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(mon.behind, false);
  feed.offer(mon, events[9]!); // already sent by the catch-up: skipped
  assert.equal(mon.got.length, 10);
  store.close();
});

Deno.test("EventFeed: an owner's reader catches up on its owner's events only, page by page", () => {
  const { store } = storeWith(9);
  const feed = new EventFeed(store, { pageSize: 2 });
  let takes = 0;
  const ann = reader("ann", () => takes < 3); // its buffer fills after 3 events
  const take = ann.take;
  ann.take = (e) => {
    takes++;
    take(e);
  };
  ann.behind = true;
  feed.add(ann);
  feed.catchUp();
  assert.deepEqual(ann.got, [1, 3, 5, 7]); // whole pages while it had room
  assert.equal(ann.behind, true);
  takes = 0;
  feed.catchUp();
  assert.deepEqual(ann.got, [1, 3, 5, 7, 9]);
  assert.equal(ann.behind, false);
  assert.equal(feed.lagging, false);
  store.close();
});
