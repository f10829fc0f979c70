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

interface K extends J {
  kind: string;
}
let kseq = 0;
const k = (id: string, priority: number, kind: string): K => ({
  id,
  priority,
  seq: kseq++,
  kind,
});

Deno.test("JobQueue with classes keeps one order across them and one head per class", () => {
  const queue = new JobQueue<K>({ classOf: (job) => job.kind });
  const a = k("a", 5, "x"), b = k("b", 1, "y"), c = k("c", 5, "y"), d = k("d", 0, "x");
  for (const job of [a, b, c, d]) queue.enqueue(job);
  assert.equal(queue.classCount, 2);
  assert.deepEqual(queue.toArray().map((job) => job.id), ["d", "b", "a", "c"]);
  assert.deepEqual(
    queue.classes().map(({ key, head, length }) => [key, head.id, length]).sort(),
    [["x", "d", 2], ["y", "b", 2]],
  );
  assert.equal(queue.peekClass("y"), b);
  assert.equal(queue.pop(), d);
  assert.equal(queue.remove(b), true);
  assert.equal(queue.has(b), false);
  assert.equal(queue.setPriority(c, 2), true);
  assert.deepEqual(queue.first(10).map((job) => job.id), ["c", "a"]);
  assert.equal(queue.remove(c), true);
  assert.equal(queue.classCount, 1); // an empty class is dropped
  assert.equal(queue.peekClass("y"), undefined);
  assert.equal(queue.length, 1);
});

Deno.test("JobQueue.drain skips a class whose head is refused and goes on with the others", () => {
  const queue = new JobQueue<K>({ classOf: (job) => job.kind });
  const jobs = [k("gpu1", 0, "gpu"), k("cpu1", 3, "cpu"), k("gpu2", 4, "gpu"), k("cpu2", 5, "cpu")];
  for (const job of jobs) queue.enqueue(job);
  const offered: string[] = [];
  queue.drain((job) => {
    offered.push(job.id);
    return job.kind === "cpu" && queue.remove(job);
  });
  assert.deepEqual(offered, ["gpu1", "cpu1", "cpu2"]); // gpu2 never offered: its class is stuck
  assert.deepEqual(queue.toArray().map((job) => job.id), ["gpu1", "gpu2"]);
  // One class: stops at the first refusal, as the queue always did.
  const single = new JobQueue<K>();
  for (const job of [k("a", 1, "x"), k("b", 2, "x")]) single.enqueue(job);
  let calls = 0;
  single.drain(() => (calls++, false));
  assert.equal(calls, 1);
});

Deno.test("JobQueue.first gives the next jobs across classes without sorting them all", () => {
  const queue = new JobQueue<K>({ classOf: (job) => job.kind, maxLength: 1000 });
  for (let i = 0; i < 300; i++) queue.enqueue(k(`j${i}`, 10 - (i % 11), i % 3 ? "a" : "b"));
  const first = queue.first(50);
  assert.deepEqual(first, queue.toArray().slice(0, 50));
  assert.deepEqual(queue.first(0), []);
  assert.equal(queue.first(1000).length, 300);
});
