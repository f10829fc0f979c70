// deno-lint-ignore-file no-console
/**
 * Benchmarks of `scheduler/binary_heap.ts` (both index modes: the default `Map`, and `indexKey`)
 * against a plain array binary heap (no stability, no removal, same compare on priority) written
 * here as the baseline. A copy of the plain heap given the stable compare `(priority, seq)` shows
 * what stability alone costs: the floor for any stable heap.
 *
 * `deno bench -A bench/binary_heap_bench.ts` measures time. Run it with
 * `--v8-flags=--expose-gc` to also print the V8 heap bytes per waiting entry (100,000 entries).
 *
 * @module
 */

import { mulberry32 } from "../producer/generator.ts";
import { BinaryHeap } from "../core/binary_heap.ts";

interface Entry {
  priority: number;
  seq: number;
}

function makeEntries(count: number, priority: (random: () => number) => number): Entry[] {
  const random = mulberry32(42);
  const entries: Entry[] = new Array(count);
  for (let i = 0; i < count; i++) entries[i] = { priority: priority(random), seq: i };
  return entries;
}

// Each heap class sees this one compare only: a second compare function through the same call
// site would make it polymorphic and slow that heap down (an unfair baseline).
const byPriority = (a: Entry, b: Entry): number => a.priority - b.priority;
const bySeqToo = (a: Entry, b: Entry): number => a.priority - b.priority || a.seq - b.seq;
const INDEX = Symbol("bench heap index");

/** The baseline: a plain array binary heap, no stability, no removal, no index. */
class PlainHeap<T> {
  #data: T[] = [];
  #compare: (a: T, b: T) => number;

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  get length(): number {
    return this.#data.length;
  }

  push(value: T): number {
    const data = this.#data;
    let hole = data.length;
    data.push(value);
    while (hole > 0) {
      const parent = (hole - 1) >> 1;
      if (this.#compare(value, data[parent]!) >= 0) break;
      data[hole] = data[parent]!;
      hole = parent;
    }
    data[hole] = value;
    return data.length;
  }

  pop(): T | undefined {
    const data = this.#data;
    if (data.length === 0) return undefined;
    const top = data[0];
    const last = data.pop()!;
    const length = data.length;
    if (length > 0) {
      let hole = 0;
      while (true) {
        let child = 2 * hole + 1;
        if (child >= length) break;
        if (child + 1 < length && this.#compare(data[child + 1]!, data[child]!) < 0) child++;
        if (this.#compare(data[child]!, last) >= 0) break;
        data[hole] = data[child]!;
        hole = child;
      }
      data[hole] = last;
    }
    return top;
  }
}

/**
 * `PlainHeap` again, used with `bySeqToo` only: a separate copy so that each class's compare call
 * stays monomorphic. Stable because no two entries compare equal.
 */
class PlainStableHeap<T> {
  #data: T[] = [];
  #compare: (a: T, b: T) => number;

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  get length(): number {
    return this.#data.length;
  }

  push(value: T): number {
    const data = this.#data;
    let hole = data.length;
    data.push(value);
    while (hole > 0) {
      const parent = (hole - 1) >> 1;
      if (this.#compare(value, data[parent]!) >= 0) break;
      data[hole] = data[parent]!;
      hole = parent;
    }
    data[hole] = value;
    return data.length;
  }

  pop(): T | undefined {
    const data = this.#data;
    if (data.length === 0) return undefined;
    const top = data[0];
    const last = data.pop()!;
    const length = data.length;
    if (length > 0) {
      let hole = 0;
      while (true) {
        let child = 2 * hole + 1;
        if (child >= length) break;
        if (child + 1 < length && this.#compare(data[child + 1]!, data[child]!) < 0) child++;
        if (this.#compare(data[child]!, last) >= 0) break;
        data[hole] = data[child]!;
        hole = child;
      }
      data[hole] = last;
    }
    return top;
  }
}

const MILLION = 1_000_000;
const tiers = makeEntries(MILLION, (random) => Math.floor(random() * 11)); // 0..10, many ties
const floats = makeEntries(MILLION, (random) => random()); // nearly all distinct

for (
  const [group, entries] of [["push+pop 1M, priority 0..10", tiers], [
    "push+pop 1M, random float priority",
    floats,
  ]] as const
) {
  Deno.bench({ group, name: "plain array heap", baseline: true, n: 5, warmup: 1 }, () => {
    const heap = new PlainHeap(byPriority);
    for (let i = 0; i < entries.length; i++) heap.push(entries[i]!);
    while (heap.length > 0) heap.pop();
  });
  Deno.bench({ group, name: "plain array heap, stable compare", n: 5, warmup: 1 }, () => {
    const heap = new PlainStableHeap(bySeqToo);
    for (let i = 0; i < entries.length; i++) heap.push(entries[i]!);
    while (heap.length > 0) heap.pop();
  });
  Deno.bench({ group, name: "BinaryHeap (Map)", n: 5, warmup: 1 }, () => {
    const heap = new BinaryHeap(byPriority);
    for (let i = 0; i < entries.length; i++) heap.push(entries[i]!);
    while (heap.length > 0) heap.pop();
  });
  Deno.bench({ group, name: "BinaryHeap (indexKey)", n: 5, warmup: 1 }, () => {
    const heap = new BinaryHeap(byPriority, { indexKey: INDEX });
    for (let i = 0; i < entries.length; i++) heap.push(entries[i]!);
    while (heap.length > 0) heap.pop();
  });
}

// A runner-sized queue: 1,000 waiting entries pushed then popped, 1,000 times over (1M of each).
const small = tiers.slice(0, 1_000);
const smallGroup = "push+pop 1,000 entries x 1,000, priority 0..10";
interface AnyHeap {
  push(value: Entry): number;
  pop(): Entry | undefined;
}
function smallBench(makeHeap: () => AnyHeap): () => void {
  return (): void => {
    for (let round = 0; round < 1_000; round++) {
      const heap = makeHeap();
      for (let i = 0; i < small.length; i++) heap.push(small[i]!);
      while (heap.pop() !== undefined);
    }
  };
}
Deno.bench(
  { group: smallGroup, name: "plain array heap", baseline: true, n: 20, warmup: 2 },
  smallBench(() => new PlainHeap(byPriority)),
);
Deno.bench(
  { group: smallGroup, name: "plain array heap, stable compare", n: 20, warmup: 2 },
  smallBench(() => new PlainStableHeap(bySeqToo)),
);
Deno.bench(
  { group: smallGroup, name: "BinaryHeap (Map)", n: 20, warmup: 2 },
  smallBench(() => new BinaryHeap(byPriority)),
);
Deno.bench(
  { group: smallGroup, name: "BinaryHeap (indexKey)", n: 20, warmup: 2 },
  smallBench(() => new BinaryHeap(byPriority, { indexKey: INDEX })),
);

const THOUSANDS = 100_000;
const waiting = tiers.slice(0, THOUSANDS);
const memoryGroup = "memory: build a heap of 100,000 waiting entries";
Deno.bench({ group: memoryGroup, name: "plain array heap", baseline: true }, () => {
  const heap = new PlainHeap(byPriority);
  for (let i = 0; i < waiting.length; i++) heap.push(waiting[i]!);
});
Deno.bench({ group: memoryGroup, name: "BinaryHeap (Map)" }, () => {
  const heap = new BinaryHeap(byPriority);
  for (let i = 0; i < waiting.length; i++) heap.push(waiting[i]!);
});
Deno.bench({ group: memoryGroup, name: "BinaryHeap (indexKey)" }, () => {
  const heap = new BinaryHeap(byPriority, { indexKey: INDEX });
  for (let i = 0; i < waiting.length; i++) heap.push(waiting[i]!);
});

/**
 * V8 heap bytes per entry that `build` retains for `THOUSANDS` entries. Everything measured is
 * used after the second reading: optimized code may otherwise free it early.
 */
function bytesPerEntry(gc: () => void, build: (entries: Entry[]) => { length: number }): number {
  const heapUsed = (): number => {
    gc();
    gc();
    return Deno.memoryUsage().heapUsed;
  };
  const entries = makeEntries(THOUSANDS, (random) => Math.floor(random() * 11));
  const before = heapUsed();
  const built = build(entries);
  const after = heapUsed();
  if (built.length !== entries.length) throw new Error("bytesPerEntry: wrong length");
  return (after - before) / THOUSANDS;
}

function measureMemory(gc: () => void): void {
  const objects = bytesPerEntry(gc, (entries) => entries.map((e) => ({ ...e })));
  const plain = bytesPerEntry(gc, (entries) => {
    const heap = new PlainHeap(byPriority);
    for (const entry of entries) heap.push(entry);
    return heap;
  });
  const ours = bytesPerEntry(gc, (entries) => {
    const heap = new BinaryHeap(byPriority);
    for (const entry of entries) heap.push(entry);
    return heap;
  });
  const keyed = bytesPerEntry(gc, (entries) => {
    const heap = new BinaryHeap(byPriority, { indexKey: INDEX });
    for (const entry of entries) heap.push(entry);
    return heap;
  });
  console.log(
    `memory, ${THOUSANDS} waiting entries, V8 heap bytes per entry: an entry object ` +
      `(with its array slot) ${objects.toFixed(1)}; plain heap ${plain.toFixed(1)}; ` +
      `BinaryHeap (Map) ${ours.toFixed(1)}; BinaryHeap (indexKey) ${keyed.toFixed(1)} ` +
      `(node and property on fresh entries)`,
  );
}

const gc = (globalThis as { gc?: () => void }).gc;
if (gc) measureMemory(gc);
else console.log("memory: run with --v8-flags=--expose-gc to print bytes per entry");
