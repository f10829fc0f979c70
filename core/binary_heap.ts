/**
 * A binary heap (priority queue) that is stable among equals and can remove or re-position any
 * value it holds in O(log n).
 *
 * @module
 */

/**
 * One slot of the heap: the value, its push sequence number and its current index (-1 once it
 * left the heap, in `indexKey` mode, where a value keeps its node for its next push).
 */
interface HeapNode<T> {
  value: T;
  seq: number;
  index: number;
}

/** Where a value's {@linkcode HeapNode} is kept in `indexKey` mode. */
type Marked<T> = Record<symbol, HeapNode<T> | undefined>;

/** Options for {@linkcode BinaryHeap}. */
export interface BinaryHeapOptions {
  /**
   * Keep each value's heap node (its place and push number) on the value itself, under this
   * symbol, instead of in a `Map` from value to node: no hashing, and a value pushed again
   * reuses its node. 1.4 – 1.6× as fast as the `Map` (see `docs/bench.md`), for values that
   * are objects the caller owns, identified by object identity.
   *
   * On a value's first push the heap defines a non-enumerable property under `indexKey`
   * (spreads, `JSON.stringify` and deep equality do not see it), and never deletes it. Values
   * must be extensible objects. Use one key per heap a value can be in at the same time: two
   * heaps holding the same value under the same key break each other (the runner keeps its
   * waiting jobs in two heaps, under two keys). A cleared or dropped heap leaves nothing
   * behind that matters.
   *
   * @default {undefined} (a `Map`: values of any kind, identified like a `Set`'s members)
   */
  indexKey?: symbol;
}

/**
 * A binary heap ordered by `compare`: the value that compares lowest comes out first. Its API is
 * close to `@std/data-structures`' `BinaryHeap`, with three differences:
 *
 * - **Stable**: values that compare equal (0) come out in the order they were pushed. A value
 *   removed and pushed again counts as newly pushed; a caller that wants it to keep its
 *   original place encodes that in `compare` (e.g. compare `(priority, submission seq)`).
 * - **Distinct values**: values are identified like a `Set`'s members (`SameValueZero`), so
 *   pushing a value already in the heap throws. In exchange {@linkcode BinaryHeap.has} is
 *   O(1), and {@linkcode BinaryHeap.remove} and {@linkcode BinaryHeap.update} are O(log n).
 * - {@linkcode BinaryHeap.toArray} is a sorted copy and {@linkcode BinaryHeap.values} a
 *   non-consuming iterator; iterating the heap itself (`for…of`, spreading) drains it, as with
 *   `@std`'s heap.
 *
 * The `indexKey` option (see {@linkcode BinaryHeapOptions}) trades the `Map` that indexes the
 * values for a property on each value: faster, for objects the caller owns.
 *
 * Mutating the heap while iterating {@linkcode BinaryHeap.values} gives unspecified results.
 *
 * @typeParam T The type of the values.
 *
 * @example A queue of jobs, most urgent (lowest priority number) first
 * ```ts
 * import { BinaryHeap } from "./binary_heap.ts";
 * const heap = new BinaryHeap<{ name: string; priority: number }>(
 *   (a, b) => a.priority - b.priority,
 * );
 * const backup = { name: "backup", priority: 5 };
 * heap.push(backup, { name: "report", priority: 2 }, { name: "mail", priority: 5 });
 * backup.priority = 0; // its key changed: tell the heap
 * heap.update(backup);
 * console.log([...heap].map((job) => job.name)); // ["backup", "report", "mail"]
 * ```
 */
export class BinaryHeap<T> implements Iterable<T> {
  #compare: (a: T, b: T) => number;
  #nodes: HeapNode<T>[] = [];
  /** The value -> node index, unless `indexKey` is set. */
  #index: Map<T, HeapNode<T>> | undefined;
  #key: symbol | undefined;
  #seq = 0;

  /**
   * Creates an empty heap.
   *
   * @param compare Orders two values: negative if `a` comes out before `b`, positive if after,
   *   0 if they are equal (then the one pushed first comes out first).
   * @param options See {@linkcode BinaryHeapOptions}.
   * @throws {TypeError} If `compare` is not a function, or `indexKey` is given and not a symbol.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * console.log(heap.length); // 0
   * // Objects of our own: each carries its place in the heap under a symbol of ours.
   * const place = Symbol("place");
   * const jobs = new BinaryHeap<{ priority: number }>((a, b) => a.priority - b.priority, {
   *   indexKey: place,
   * });
   * jobs.push({ priority: 3 }, { priority: 1 });
   * console.log(jobs.pop()); // { priority: 1 }
   * ```
   */
  constructor(compare: (a: T, b: T) => number, options: BinaryHeapOptions = {}) {
    if (typeof compare !== "function") {
      throw new TypeError(
        `Cannot create BinaryHeap: 'compare' must be a function, got ${typeof compare}`,
      );
    }
    const key = options?.indexKey;
    if (key !== undefined && typeof key !== "symbol") {
      throw new TypeError(
        `Cannot create BinaryHeap: 'indexKey' must be a symbol, got ${typeof key}`,
      );
    }
    this.#compare = compare;
    this.#key = key;
    this.#index = key === undefined ? new Map() : undefined;
  }

  /**
   * The number of values in the heap.
   *
   * @returns The number of values.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * heap.push(3, 1);
   * console.log(heap.length); // 2
   * ```
   */
  get length(): number {
    return this.#nodes.length;
  }

  /**
   * Tells whether the heap is empty.
   *
   * @returns `true` if the heap holds no value.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * console.log(heap.isEmpty()); // true
   * ```
   */
  isEmpty(): boolean {
    return this.#nodes.length === 0;
  }

  /**
   * The value that would come out next, without removing it.
   *
   * @returns The first value, or `undefined` if the heap is empty.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * heap.push(3, 1, 2);
   * console.log(heap.peek()); // 1
   * console.log(heap.length); // 3
   * ```
   */
  peek(): T | undefined {
    return this.#nodes[0]?.value;
  }

  /**
   * Adds values, in order (each one counts as pushed after the previous one). O(log n) each.
   *
   * @param values The values to add; none may already be in the heap.
   * @returns The new number of values.
   * @throws {TypeError} If a value is already in the heap, or given twice, or (with `indexKey`)
   *   is not an object; the values before it have been added, the rest have not.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<string>((a, b) => a.length - b.length);
   * console.log(heap.push("ccc", "a", "bb")); // 3
   * console.log(heap.pop()); // "a"
   * ```
   */
  push(...values: T[]): number {
    for (let i = 0; i < values.length; i++) this.#add(values[i]!);
    return this.#nodes.length;
  }

  /**
   * Removes and returns the first value. O(log n).
   *
   * @returns The first value, or `undefined` if the heap is empty.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * heap.push(2, 1);
   * console.log(heap.pop(), heap.pop(), heap.pop()); // 1 2 undefined
   * ```
   */
  pop(): T | undefined {
    const nodes = this.#nodes;
    if (nodes.length === 0) return undefined;
    const top = nodes[0]!;
    this.#forget(top);
    const last = nodes.pop()!;
    if (last !== top) this.#fill(0, last);
    return top.value;
  }

  /**
   * Tells whether a value is in the heap. O(1).
   *
   * @param value The value to look for (compared like a `Set`'s members).
   * @returns `true` if the value is in the heap.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * heap.push(7);
   * console.log(heap.has(7), heap.has(8)); // true false
   * ```
   */
  has(value: T): boolean {
    return this.#nodeOf(value) !== undefined;
  }

  /**
   * Removes a value from anywhere in the heap. O(log n).
   *
   * @param value The value to remove.
   * @returns `true` if it was removed, `false` if it was not in the heap.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * heap.push(1, 2, 3);
   * console.log(heap.remove(2), heap.remove(2)); // true false
   * console.log([...heap]); // [1, 3]
   * ```
   */
  remove(value: T): boolean {
    const node = this.#nodeOf(value);
    if (node === undefined) return false;
    const hole = node.index;
    this.#forget(node);
    const last = this.#nodes.pop()!;
    if (last !== node) this.#fill(hole, last);
    return true;
  }

  /**
   * Re-positions a value whose sort key changed since it was pushed (or last updated). It keeps
   * its push sequence number, so among equals it keeps its place. O(log n).
   *
   * Changing the key of a value in the heap without calling `update` breaks the heap's order.
   *
   * @param value The value whose key changed.
   * @returns `true` if it was re-positioned, `false` if it was not in the heap.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<{ p: number }>((a, b) => a.p - b.p);
   * const late = { p: 9 };
   * heap.push({ p: 1 }, late);
   * late.p = 0;
   * heap.update(late);
   * console.log(heap.peek() === late); // true
   * ```
   */
  update(value: T): boolean {
    const node = this.#nodeOf(value);
    if (node === undefined) return false;
    this.#fill(node.index, node);
    return true;
  }

  /**
   * Removes every value.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * heap.push(1, 2);
   * heap.clear();
   * console.log(heap.isEmpty()); // true
   * ```
   */
  clear(): void {
    const nodes = this.#nodes;
    this.#nodes = [];
    if (this.#index !== undefined) this.#index.clear();
    else for (let i = 0; i < nodes.length; i++) nodes[i]!.index = -1;
  }

  /**
   * Pops the values in order, emptying the heap as the iterator advances. Values pushed while
   * draining come out too, in their place.
   *
   * @returns An iterator of the values, first first.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * heap.push(3, 1, 2);
   * console.log([...heap.drain()], heap.length); // [1, 2, 3] 0
   * ```
   */
  *drain(): IterableIterator<T> {
    while (this.#nodes.length > 0) yield this.pop()!;
  }

  /**
   * Iterating the heap drains it, like {@linkcode BinaryHeap.drain} (and like `@std`'s
   * `BinaryHeap`): `[...heap]` and `for (const v of heap)` empty it. For a look that leaves the
   * heap as it is, use {@linkcode BinaryHeap.toArray} (sorted) or
   * {@linkcode BinaryHeap.values} (unordered).
   *
   * @returns An iterator of the values, first first, that empties the heap.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * heap.push(2, 1);
   * for (const value of heap) console.log(value); // 1, then 2
   * console.log(heap.isEmpty()); // true
   * ```
   */
  [Symbol.iterator](): IterableIterator<T> {
    return this.drain();
  }

  /**
   * The values in heap (storage) order, without removing them: cheap, unordered beyond "the
   * first one comes out first". Do not mutate the heap while iterating.
   *
   * @returns An iterator of the values, in no particular order.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * heap.push(3, 1, 2);
   * console.log([...heap.values()].length, heap.length); // 3 3
   * ```
   */
  *values(): IterableIterator<T> {
    const nodes = this.#nodes;
    for (let i = 0; i < nodes.length; i++) yield nodes[i]!.value;
  }

  /**
   * A sorted copy of the values, in the order they would come out, without removing them.
   * O(n log n): meant for status displays, not for hot paths.
   *
   * @returns A new array of the values, first first.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * heap.push(3, 1, 2);
   * console.log(heap.toArray(), heap.length); // [1, 2, 3] 3
   * ```
   */
  toArray(): T[] {
    return this.#nodes.slice().sort((a, b) => this.#before(a, b) ? -1 : 1).map((node) =>
      node.value
    );
  }

  /** Adds one value: a new node at the bottom, moved up to its place. */
  #add(value: T): void {
    const nodes = this.#nodes;
    const index = this.#index;
    let node: HeapNode<T>;
    if (index !== undefined) {
      node = { value, seq: this.#seq, index: nodes.length };
      // One hash lookup, not two (has, then set): a duplicate leaves the size unchanged.
      const size = index.size;
      index.set(value, node);
      if (index.size === size) this.#rejectDuplicate(value);
    } else {
      node = this.#mark(value);
      node.seq = this.#seq;
      node.index = nodes.length;
    }
    this.#seq++;
    nodes.push(node);
    this.#siftUp(node, node.index);
  }

  /** The node of `value` in this heap, if it is in it. */
  #nodeOf(value: T): HeapNode<T> | undefined {
    if (this.#index !== undefined) return this.#index.get(value);
    if (value === null || value === undefined) return undefined;
    const node = (value as Marked<T>)[this.#key!];
    return this.#isLive(node, value) ? node : undefined;
  }

  /** `indexKey` mode: whether `node`, read from `value`'s mark, is in this heap now. */
  #isLive(node: HeapNode<T> | undefined, value: T): node is HeapNode<T> {
    return node !== undefined && node.index >= 0 && this.#nodes[node.index] === node &&
      node.value === value;
  }

  /**
   * `indexKey` mode: the node `value` carries under the key, made on its first push and reused
   * for the next ones (no allocation), or throws if the value is already in this heap.
   */
  #mark(value: T): HeapNode<T> {
    if (typeof value !== "object" && typeof value !== "function" || value === null) {
      throw new TypeError(
        `Cannot push to BinaryHeap: with 'indexKey', values must be objects, got ${
          describe(value)
        }`,
      );
    }
    const key = this.#key!;
    const marked = value as Marked<T>;
    const node = marked[key];
    // index -1: the value left a heap; otherwise it is still in one, or in a cleared or dropped
    // one, or its mark was copied from another value.
    if (node !== undefined && node.value === value) {
      if (node.index >= 0 && this.#isLive(node, value)) this.#rejectDuplicate(value);
      return node;
    }
    const fresh: HeapNode<T> = { value, seq: 0, index: -1 };
    // Not enumerable, so spreads, JSON and deep equality do not see it.
    Object.defineProperty(marked, key, { value: fresh, writable: true, configurable: true });
    return fresh;
  }

  /** Drops a node leaving the heap from the index (`Map` mode) or marks it out (`indexKey`). */
  #forget(node: HeapNode<T>): void {
    if (this.#index !== undefined) this.#index.delete(node.value);
    else node.index = -1;
  }

  /** Throws for a value pushed while in the heap; in `Map` mode first restores its entry. O(n). */
  #rejectDuplicate(value: T): never {
    if (this.#index !== undefined) {
      // Pushing overwrote the entry: find the node by the index's own equality (SameValueZero).
      const probe = new Set([value]);
      this.#index.set(value, this.#nodes.find((node) => probe.has(node.value))!);
    }
    throw new TypeError(
      `Cannot push to BinaryHeap: the value is already in the heap, got ${describe(value)}`,
    );
  }

  /** Whether node `a` comes out before node `b`: by `compare`, then by push order. */
  #before(a: HeapNode<T>, b: HeapNode<T>): boolean {
    const order = this.#compare(a.value, b.value);
    return order < 0 || (order === 0 && a.seq < b.seq);
  }

  /**
   * Puts `node` in the place of a hole at `hole` ("bottom-up" or Floyd's sift-down): the hole
   * moves down to a leaf, each time taking the child that comes first (one compare per level),
   * then `node` moves up from there. With many equal keys a stable heap goes to the bottom
   * anyway, and this needs half the compares of the classic sift-down. Also re-positions a node
   * in place (`node` at `hole`) whose key changed, either way. If `compare` throws, `node` lands
   * in the current hole, so the heap stays a permutation of its values.
   */
  #fill(hole: number, node: HeapNode<T>): void {
    const nodes = this.#nodes;
    const compare = this.#compare;
    const length = nodes.length;
    try {
      for (let childIndex = 2 * hole + 1; childIndex < length; childIndex = 2 * hole + 1) {
        let child = nodes[childIndex]!;
        if (childIndex + 1 < length) {
          const right = nodes[childIndex + 1]!;
          const order = compare(right.value, child.value);
          if (order < 0 || (order === 0 && right.seq < child.seq)) {
            child = right;
            childIndex++;
          }
        }
        nodes[hole] = child;
        child.index = hole;
        hole = childIndex;
      }
    } catch (error) {
      nodes[hole] = node;
      node.index = hole;
      throw error;
    }
    this.#siftUp(node, hole);
  }

  /**
   * Puts `node` in the hole at `hole` or above: parents that `node` comes before move down into
   * the hole. `node` lands in the final hole even if `compare` throws.
   */
  #siftUp(node: HeapNode<T>, hole: number): void {
    const nodes = this.#nodes;
    const compare = this.#compare;
    const { value, seq } = node;
    try {
      while (hole > 0) {
        const parentIndex = (hole - 1) >> 1;
        const parent = nodes[parentIndex]!;
        const order = compare(value, parent.value);
        if (order > 0 || (order === 0 && seq > parent.seq)) break;
        nodes[hole] = parent;
        parent.index = hole;
        hole = parentIndex;
      }
    } finally {
      nodes[hole] = node;
      node.index = hole;
    }
  }
}

/** A short description of a value for error messages. */
function describe(value: unknown): string {
  const text = typeof value === "string"
    ? JSON.stringify(value)
    : typeof value === "object" && value !== null
    ? Deno.inspect(value, { depth: 1, breakLength: Infinity })
    : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
