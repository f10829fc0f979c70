import assert from "node:assert/strict";
import { EventCursor } from "../../bus/event_cursor.ts";

Deno.test("EventCursor resumes after the greatest seq taken, from the second registration on", () => {
  const cursor = new EventCursor();
  assert.deepEqual(cursor.register(), {});
  assert.equal(cursor.registered(10), "first");
  assert.deepEqual(cursor.register(), { after: 10 }, "the next connection resumes");
  assert.equal(cursor.seq, 10);
  assert.equal(cursor.take(10), false, "at the registration's seq: had before we came");
  assert.equal(cursor.take(12), true);
  assert.equal(cursor.take(11), false);
  assert.equal(cursor.take(undefined), true, "an older bus's event");
  assert.equal(cursor.seq, 12);
  assert.deepEqual(cursor.register(), { after: 12 });
  assert.equal(cursor.registered(15), "resumed");
  assert.equal(cursor.seq, 12, "a re-registration's seq does not skip the replay");
});

Deno.test("EventCursor takes a resync's seq, and starts again with a bus whose series restarted", () => {
  const cursor = new EventCursor();
  cursor.registered(undefined); // an older bus first: no resume point yet
  assert.deepEqual(cursor.register(), {});
  assert.equal(cursor.take(5), true);
  cursor.resync(40);
  assert.equal(cursor.take(39), false);
  assert.deepEqual(cursor.register(), { after: 40 });
  assert.equal(cursor.registered(3), "reset", "a bus restarted without its store");
  assert.equal(cursor.take(4), true);
  assert.throws(() => cursor.resync(-1), RangeError);
});
