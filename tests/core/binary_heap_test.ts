import assert from "node:assert/strict";
import { mulberry32 } from "../../producer/generator.ts";
import { BinaryHeap, type BinaryHeapOptions } from "../../core/binary_heap.ts";

interface Item {
  key: number;
  name: string;
}

const byKey = (a: Item, b: Item): number => a.key - b.key;
const item = (key: number, name = `k${key}`): Item => ({ key, name });
const names = (items: Iterable<Item>): string[] => [...items].map((i) => i.name);

Deno.test("BinaryHeap constructor rejects a compare that is not a function", () => {
  assert.throws(
    () => new BinaryHeap<number>(undefined as unknown as (a: number, b: number) => number),
    { name: "TypeError", message: /'compare' must be a function, got undefined/ },
  );
});

Deno.test("BinaryHeap starts empty: length 0, isEmpty, peek and pop undefined", () => {
  const heap = new BinaryHeap(byKey);
  assert.equal(heap.length, 0);
  assert.ok(heap.isEmpty());
  assert.equal(heap.peek(), undefined);
  assert.equal(heap.pop(), undefined);
  assert.deepEqual(heap.toArray(), []);
});

Deno.test("BinaryHeap.push returns the new length and pop returns the lowest first", () => {
  const heap = new BinaryHeap<number>((a, b) => a - b);
  assert.equal(heap.push(5, 3, 8), 3);
  assert.equal(heap.push(1), 4);
  assert.equal(heap.push(), 4);
  assert.equal(heap.peek(), 1);
  assert.equal(heap.length, 4);
  assert.ok(!heap.isEmpty());
  assert.deepEqual([heap.pop(), heap.pop(), heap.pop(), heap.pop(), heap.pop()], [
    1,
    3,
    5,
    8,
    undefined,
  ]);
  assert.ok(heap.isEmpty());
});

Deno.test("BinaryHeap is stable: equal values come out in push order", () => {
  const heap = new BinaryHeap(byKey);
  const pushed = [item(2, "a"), item(1, "b"), item(2, "c"), item(1, "d"), item(2, "e")];
  for (const value of pushed) heap.push(value);
  heap.push(item(1, "f"), item(0, "g"), item(1, "h"));
  assert.deepEqual(names(heap.drain()), ["g", "b", "d", "f", "h", "a", "c", "e"]);
});

Deno.test("BinaryHeap gives a value removed and pushed again a new place among equals", () => {
  const heap = new BinaryHeap(byKey);
  const a = item(1, "a");
  heap.push(a, item(1, "b"), item(1, "c"));
  assert.ok(heap.remove(a));
  heap.push(a);
  assert.deepEqual(names(heap), ["b", "c", "a"]);
});

Deno.test("BinaryHeap.push throws a TypeError for a value already in the heap", () => {
  const heap = new BinaryHeap(byKey);
  const a = item(1, "a");
  heap.push(a);
  assert.throws(() => heap.push(a), {
    name: "TypeError",
    message: /Cannot push to BinaryHeap: the value is already in the heap, got \{ key: 1/,
  });
  const b = item(2, "b");
  const c = item(3, "c");
  assert.throws(() => heap.push(b, b, c), TypeError);
  assert.deepEqual(names(heap.toArray()), ["a", "b"], "values before the duplicate were added");
  assert.equal(heap.length, 2, "a failed push leaves the heap as it was");
  assert.ok(heap.remove(a), "and the value already there is still found");
  assert.ok(!heap.has(a));
  heap.push(a); // removed values may come back
  assert.equal(heap.length, 2);
});

Deno.test("BinaryHeap treats values by identity, like a Set", () => {
  const heap = new BinaryHeap<number>(() => 0);
  heap.push(NaN, -0);
  assert.throws(() => heap.push(0), TypeError, "0 and -0 are the same value");
  assert.throws(() => heap.push(NaN), TypeError, "NaN is NaN");
  assert.ok(heap.remove(NaN));
  assert.ok(heap.has(0));
  assert.equal(heap.pop(), -0);
  const objects = new BinaryHeap(byKey);
  objects.push(item(1), item(1));
  assert.equal(objects.length, 2, "equal-looking objects are distinct");
});

Deno.test("BinaryHeap.has finds values in the heap only", () => {
  const heap = new BinaryHeap(byKey);
  const a = item(1);
  const b = item(2);
  heap.push(a);
  assert.ok(heap.has(a));
  assert.ok(!heap.has(b));
  heap.pop();
  assert.ok(!heap.has(a));
});

Deno.test("BinaryHeap.remove takes a value from anywhere and keeps the order", () => {
  const heap = new BinaryHeap(byKey);
  const items = [5, 1, 9, 3, 7, 2, 8, 0, 6, 4].map((k) => item(k));
  heap.push(...items);
  assert.ok(heap.remove(items[0]!)); // 5, in the middle
  assert.ok(heap.remove(items[7]!)); // 0, the top
  assert.ok(!heap.remove(items[7]!));
  assert.ok(!heap.remove(item(3)), "an equal but different value is not in the heap");
  assert.ok(!heap.has(items[0]!));
  assert.equal(heap.length, 8);
  assert.deepEqual(heap.toArray().map((i) => i.key), [1, 2, 3, 4, 6, 7, 8, 9]);
  assert.deepEqual([...heap].map((i) => i.key), [1, 2, 3, 4, 6, 7, 8, 9]);
});

Deno.test("BinaryHeap.remove of the last value and of the only value", () => {
  const heap = new BinaryHeap(byKey);
  const a = item(1);
  heap.push(a);
  assert.ok(heap.remove(a));
  assert.ok(heap.isEmpty());
  assert.equal(heap.peek(), undefined);
});

Deno.test("BinaryHeap.update moves a value up or down after its key changed", () => {
  const heap = new BinaryHeap(byKey);
  const items = [4, 8, 2, 6, 0].map((k) => item(k));
  heap.push(...items);
  items[1]!.key = -1; // 8 -> -1: up
  assert.ok(heap.update(items[1]!));
  assert.equal(heap.peek(), items[1]!);
  items[1]!.key = 10; // -1 -> 10: down
  assert.ok(heap.update(items[1]!));
  assert.ok(heap.update(items[2]!), "an unchanged key is fine");
  assert.ok(!heap.update(item(3)));
  assert.deepEqual(heap.toArray().map((i) => i.key), [0, 2, 4, 6, 10]);
});

Deno.test("BinaryHeap.update keeps a value's push order among equals", () => {
  const heap = new BinaryHeap(byKey);
  const a = item(5, "a");
  heap.push(a, item(1, "b"), item(1, "c"));
  a.key = 1;
  heap.update(a);
  assert.deepEqual(names(heap), ["a", "b", "c"]);
});

Deno.test("BinaryHeap.clear empties the heap and forgets its values", () => {
  const heap = new BinaryHeap(byKey);
  const a = item(1);
  heap.push(a, item(2));
  heap.clear();
  assert.equal(heap.length, 0);
  assert.ok(!heap.has(a));
  heap.push(a);
  assert.equal(heap.peek(), a);
});

Deno.test("BinaryHeap.drain pops lazily, in order, including values pushed meanwhile", () => {
  const heap = new BinaryHeap<number>((a, b) => a - b);
  heap.push(3, 1, 2);
  const drain = heap.drain();
  assert.equal(heap.length, 3, "nothing popped before the first next()");
  assert.equal(drain.next().value, 1);
  assert.equal(heap.length, 2);
  heap.push(0);
  assert.deepEqual([...drain], [0, 2, 3]);
  assert.ok(heap.isEmpty());
});

Deno.test("BinaryHeap iteration drains the heap, like drain()", () => {
  const heap = new BinaryHeap<number>((a, b) => a - b);
  heap.push(2, 3, 1);
  const seen: number[] = [];
  for (const value of heap) seen.push(value);
  assert.deepEqual(seen, [1, 2, 3]);
  assert.ok(heap.isEmpty());
});

Deno.test("BinaryHeap.values iterates every value without consuming them", () => {
  const heap = new BinaryHeap<number>((a, b) => a - b);
  heap.push(5, 3, 8, 1);
  const values = [...heap.values()];
  assert.equal(values[0], 1, "the first value comes first");
  assert.deepEqual(values.toSorted((a, b) => a - b), [1, 3, 5, 8]);
  assert.equal(heap.length, 4);
});

Deno.test("BinaryHeap.toArray is a sorted, stable copy that leaves the heap intact", () => {
  const heap = new BinaryHeap(byKey);
  heap.push(item(2, "a"), item(1, "b"), item(2, "c"), item(1, "d"));
  const copy = heap.toArray();
  assert.deepEqual(names(copy), ["b", "d", "a", "c"]);
  copy.pop();
  assert.equal(heap.length, 4);
  assert.deepEqual(names(heap), ["b", "d", "a", "c"]);
});

Deno.test("BinaryHeap stays consistent when compare throws", () => {
  let failing = false;
  const heap = new BinaryHeap<number>((a, b) => {
    if (failing) throw new Error("boom");
    return a - b;
  });
  heap.push(5, 3, 8, 1, 9, 2);
  failing = true;
  assert.throws(() => heap.push(0), /boom/);
  assert.throws(() => heap.pop(), /boom/);
  failing = false;
  assert.ok(heap.has(0), "the value pushed is in the heap");
  assert.ok(!heap.has(1), "the value popped is gone");
  assert.deepEqual([...heap.values()].toSorted((a, b) => a - b), [0, 2, 3, 5, 8, 9]);
});

/** Random push/pop/remove/update/clear checked against a sorted array, in either index mode. */
function checkAgainstModel(options: BinaryHeapOptions): void {
  interface Job {
    key: number;
    id: number;
  }
  interface ModelEntry {
    job: Job;
    seq: number;
  }
  const random = mulberry32(20240611);
  const int = (n: number): number => Math.floor(random() * n);
  const heap = new BinaryHeap<Job>((a, b) => a.key - b.key, options);
  let model: ModelEntry[] = []; // kept sorted by (key, seq)
  const sortModel = (): void => {
    model.sort((a, b) => a.job.key - b.job.key || a.seq - b.seq);
  };
  const all: Job[] = []; // jobs ever made, in or out of the heap
  let seq = 0;
  const counts = { push: 0, pop: 0, remove: 0, update: 0, clear: 0 };
  for (let op = 0; op < 10_000; op++) {
    const roll = random();
    if (roll > 0.999) {
      heap.clear();
      model = [];
      counts.clear++;
    } else if (roll < 0.4 || model.length === 0) {
      // push a new job, or one that left the heap (it gets a new seq)
      const outside = all.filter((job) => !heap.has(job));
      let job: Job;
      if (outside.length > 0 && random() < 0.3) {
        job = outside[int(outside.length)]!;
        job.key = int(11);
      } else {
        job = { key: int(11), id: all.length };
        all.push(job);
      }
      heap.push(job);
      model.push({ job, seq: seq++ });
      sortModel();
      counts.push++;
    } else if (roll < 0.65) {
      const expected = model.shift()!;
      assert.equal(heap.pop(), expected.job, `op ${op}: pop`);
      counts.pop++;
    } else if (roll < 0.8) {
      const victim = random() < 0.9 ? model[int(model.length)]!.job : { key: 0, id: -2 };
      const inModel = model.some((entry) => entry.job === victim);
      assert.equal(heap.remove(victim), inModel, `op ${op}: remove`);
      model = model.filter((entry) => entry.job !== victim);
      counts.remove++;
    } else {
      const target = model[int(model.length)]!.job;
      target.key = int(11);
      assert.ok(heap.update(target), `op ${op}: update`);
      sortModel();
      counts.update++;
    }
    assert.equal(heap.length, model.length, `op ${op}: length`);
    assert.equal(heap.peek(), model[0]?.job, `op ${op}: peek`);
    const probe = all[int(all.length)]!;
    assert.equal(heap.has(probe), model.some((e) => e.job === probe), `op ${op}: has`);
  }
  assert.deepEqual(
    heap.toArray(),
    model.map((entry) => entry.job),
    "toArray matches the model at the end",
  );
  assert.deepEqual([...heap], model.map((entry) => entry.job), "and so does draining");
  const { clear, ...others } = counts;
  for (const count of Object.values(others)) assert.ok(count > 1000, JSON.stringify(counts));
  assert.ok(clear > 0, JSON.stringify(counts));
}

Deno.test("BinaryHeap matches a sorted-array model over 10,000 random operations", () => {
  checkAgainstModel({});
});

Deno.test("BinaryHeap with indexKey matches the same model over 10,000 random operations", () => {
  checkAgainstModel({ indexKey: Symbol("test") });
});

Deno.test("BinaryHeap constructor rejects an indexKey that is not a symbol", () => {
  assert.throws(() => new BinaryHeap(byKey, { indexKey: "at" as unknown as symbol }), {
    name: "TypeError",
    message: /'indexKey' must be a symbol, got string/,
  });
});

Deno.test("BinaryHeap with indexKey keeps a hidden property on the values", () => {
  const key = Symbol("place");
  const heap = new BinaryHeap(byKey, { indexKey: key });
  const a = item(1, "a");
  heap.push(a, item(0, "b"));
  assert.ok(Object.hasOwn(a, key));
  assert.deepEqual(a, { key: 1, name: "a" }, "deep equality does not see it");
  assert.deepEqual(Object.keys({ ...a }), ["key", "name"]);
  assert.equal(JSON.stringify(a), '{"key":1,"name":"a"}');
  assert.equal(heap.pop()?.name, "b");
});

Deno.test("BinaryHeap with indexKey rejects values that are not objects, and duplicates", () => {
  const heap = new BinaryHeap<unknown>(() => 0, { indexKey: Symbol("place") });
  assert.throws(() => heap.push(1), {
    name: "TypeError",
    message: /with 'indexKey', values must be objects, got 1/,
  });
  assert.throws(() => heap.push(null), TypeError);
  assert.ok(!heap.has(1) && !heap.has(null) && !heap.has(undefined));
  const a = item(1);
  heap.push(a);
  assert.throws(() => heap.push(a), /already in the heap/);
  assert.equal(heap.length, 1);
  assert.ok(!heap.has({ ...a }), "a copy is another value");
  assert.throws(() => heap.push(Object.freeze(item(2))), TypeError, "frozen: not extensible");
  assert.equal(heap.length, 1, "a failed push leaves the heap as it was");
});

Deno.test("BinaryHeap with indexKey: a value moves between heaps, and sits in two with two keys", () => {
  const key = Symbol("place");
  const first = new BinaryHeap(byKey, { indexKey: key });
  const second = new BinaryHeap(byKey, { indexKey: key });
  const a = item(1, "a");
  first.push(item(0, "x"), a);
  assert.ok(!second.has(a));
  assert.ok(!second.remove(a) && !second.update(a), "not in the second heap");
  assert.ok(first.remove(a));
  second.push(a);
  assert.ok(second.has(a) && !first.has(a));
  second.clear();
  assert.ok(!second.has(a));
  first.push(a); // after a clear, the value may go anywhere
  assert.deepEqual(names(first.toArray()), ["x", "a"]);
  const other = new BinaryHeap((x: Item, y: Item) => y.key - x.key, { indexKey: Symbol("other") });
  other.push(a, item(5, "z"));
  assert.ok(first.has(a) && other.has(a));
  assert.deepEqual(names(other), ["z", "a"]);
  assert.deepEqual(names(first), ["x", "a"]);
});
