import assert from "node:assert/strict";
import { JobQueue } from "../../bus/job_queue.ts";

interface J {
  id: string;
  priority: number;
  seq: number;
}
let seq = 0;
const j = (id: string, priority: number): J => ({ id, priority, seq: seq++ });
const ids = (queue: JobQueue<J>): string[] => queue.toArray().map((x) => x.id);

Deno.test("JobQueue orders by priority, then acceptance order, and keeps it across requeues", () => {
  const queue = new JobQueue<J>();
  const a = j("a", 5), b = j("b", 1), c = j("c", 5), d = j("d", 5);
  for (const x of [a, b, c, d]) queue.enqueue(x);
  assert.deepEqual(ids(queue), ["b", "a", "c", "d"]);
  assert.equal(queue.pop(), b);
  assert.equal(queue.pop(), a);
  queue.requeue(a); // back in front of c and d, its original place
  assert.deepEqual(ids(queue), ["a", "c", "d"]);
  assert.deepEqual(queue.countByPriority(), { "5": 3 });
});

Deno.test("JobQueue refuses new jobs at maxLength but takes requeued ones", () => {
  const queue = new JobQueue<J>({ maxLength: 1 });
  assert.equal(queue.enqueue(j("a", 1)), true);
  assert.equal(queue.full, true);
  assert.equal(queue.enqueue(j("b", 0)), false);
  queue.requeue(j("c", 0));
  assert.equal(queue.length, 2);
  assert.throws(() => new JobQueue({ maxLength: 0 }), RangeError);
});

Deno.test("JobQueue removes and re-prioritises waiting jobs only", () => {
  const queue = new JobQueue<J>();
  const a = j("a", 5), b = j("b", 5), out = j("out", 0);
  queue.enqueue(a);
  queue.enqueue(b);
  assert.equal(queue.setPriority(b, 4), true);
  assert.equal(queue.peek(), b);
  assert.equal(queue.setPriority(out, 1), false);
  assert.equal(out.priority, 0);
  assert.equal(queue.has(a), true);
  assert.equal(queue.remove(a), true);
  assert.equal(queue.remove(a), false);
  assert.deepEqual(ids(queue), ["b"]);
});
