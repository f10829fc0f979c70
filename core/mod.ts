/**
 * `core/`: the generic pieces every layer builds on, importing nothing else of ours: a clock
 * that tests can replace, a pausable deadline, an interruptible sleep, a typed `EventTarget`
 * and a stable binary heap.
 *
 * @example A stable priority queue with removal
 * ```ts
 * import { BinaryHeap } from "./mod.ts";
 * const heap = new BinaryHeap<{ id: string; priority: number }>(
 *   (a, b) => a.priority - b.priority,
 * );
 * const a = { id: "a", priority: 3 };
 * heap.push(a, { id: "b", priority: 1 });
 * heap.remove(a);
 * console.log(heap.pop()?.id); // "b"
 * ```
 *
 * @example A pausable timeout
 * ```ts
 * import { Deadline } from "./mod.ts";
 * const deadline = new Deadline(1000, () => console.log("timed out"));
 * deadline.cancel();
 * ```
 *
 * @module
 */

export * from "./binary_heap.ts";
export * from "./clock.ts";
export * from "./deadline.ts";
export * from "./describe_value.ts";
export * from "./sleep.ts";
export * from "./typed_event_target.ts";
