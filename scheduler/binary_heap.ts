/**
 * A binary heap (priority queue) that is stable among equals and can remove or re-position any
 * value it holds in O(log n).
 *
 * @module
 */

/** One slot of the heap: the value, its push sequence number and its current index. */
interface HeapNode<T> {
  value: T;
  seq: number;
  index: number;
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
  #index: Map<T, HeapNode<T>> = new Map();
  #seq = 0;

  /**
   * Creates an empty heap.
   *
   * @param compare Orders two values: negative if `a` comes out before `b`, positive if after,
   *   0 if they are equal (then the one pushed first comes out first).
   * @throws {TypeError} If `compare` is not a function.
   *
   * @example
   * ```ts
   * import { BinaryHeap } from "./binary_heap.ts";
   * const heap = new BinaryHeap<number>((a, b) => a - b);
   * console.log(heap.length); // 0
   * ```
   */
  constructor(compare: (a: T, b: T) => number) {
    if (typeof compare !== "function") {
      throw new TypeError(
        `Cannot create BinaryHeap: 'compare' must be a function, got ${typeof compare}`,
      );
    }
    this.#compare = compare;
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
    return this.#nodes.length === 0 ? undefined : this.#nodes[0].value;
  }

  /**
   * Adds values, in order (each one counts as pushed after the previous one). O(log n) each.
   *
   * @param values The values to add; none may already be in the heap.
   * @returns The new number of values.
   * @throws {TypeError} If a value is already in the heap, or given twice; the values before
   *   it have been added, the rest have not.
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
    const nodes = this.#nodes;
    const index = this.#index;
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      const node: HeapNode<T> = { value, seq: this.#seq, index: nodes.length };
      // One hash lookup, not two (has, then set): a duplicate leaves the size unchanged.
      const size = index.size;
      index.set(value, node);
      if (index.size === size) this.#rejectDuplicate(value);
      this.#seq++;
      nodes.push(node);
      this.#siftUp(node);
    }
    return nodes.length;
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
    const top = nodes[0];
    this.#index.delete(top.value);
    const last = nodes.pop()!;
    if (last !== top) {
      last.index = 0;
      nodes[0] = last;
      this.#siftDown(last);
    }
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
    return this.#index.has(value);
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
    const node = this.#index.get(value);
    if (node === undefined) return false;
    this.#index.delete(value);
    const nodes = this.#nodes;
    const last = nodes.pop()!;
    if (last !== node) {
      last.index = node.index;
      nodes[node.index] = last;
      this.#reposition(last);
    }
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
    const node = this.#index.get(value);
    if (node === undefined) return false;
    this.#reposition(node);
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
    this.#nodes = [];
    this.#index.clear();
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
    for (let i = 0; i < nodes.length; i++) yield nodes[i].value;
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

  /** Restores the index entry that pushing `value` again overwrote, and throws. O(n). */
  #rejectDuplicate(value: T): never {
    const probe = new Set([value]); // finds the node by the index's own equality (SameValueZero)
    this.#index.set(value, this.#nodes.find((node) => probe.has(node.value))!);
    throw new TypeError(
      `Cannot push to BinaryHeap: the value is already in the heap, got ${describe(value)}`,
    );
  }

  /** Whether node `a` comes out before node `b`: by `compare`, then by push order. */
  #before(a: HeapNode<T>, b: HeapNode<T>): boolean {
    const order = this.#compare(a.value, b.value);
    return order < 0 || (order === 0 && a.seq < b.seq);
  }

  /** Moves a node whose key changed up or down to its place. */
  #reposition(node: HeapNode<T>): void {
    const i = node.index;
    if (i > 0 && this.#before(node, this.#nodes[(i - 1) >> 1])) this.#siftUp(node);
    else this.#siftDown(node);
  }

  /**
   * Moves `node` up while it comes out before its parent. Parents move down into the hole it
   * leaves; the node lands in the final hole even if `compare` throws, so the heap stays a
   * permutation of its values.
   */
  #siftUp(node: HeapNode<T>): void {
    const nodes = this.#nodes;
    const compare = this.#compare;
    const { value, seq } = node;
    let hole = node.index;
    try {
      while (hole > 0) {
        const parentIndex = (hole - 1) >> 1;
        const parent = nodes[parentIndex];
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

  /** Moves `node` down while a child comes out before it; see {@linkcode BinaryHeap.#siftUp}. */
  #siftDown(node: HeapNode<T>): void {
    const nodes = this.#nodes;
    const compare = this.#compare;
    const { value, seq } = node;
    const length = nodes.length;
    let hole = node.index;
    try {
      while (true) {
        let childIndex = 2 * hole + 1;
        if (childIndex >= length) break;
        let child = nodes[childIndex];
        if (childIndex + 1 < length) {
          const right = nodes[childIndex + 1];
          const order = compare(right.value, child.value);
          if (order < 0 || (order === 0 && right.seq < child.seq)) {
            child = right;
            childIndex++;
          }
        }
        const order = compare(child.value, value);
        if (order > 0 || (order === 0 && child.seq > seq)) break;
        nodes[hole] = child;
        child.index = hole;
        hole = childIndex;
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
