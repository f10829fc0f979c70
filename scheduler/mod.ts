/**
 * `scheduler/`: run jobs by priority on a bounded number of slots. Built on `process/`.
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
 * @module
 */

export * from "./binary_heap.ts";
export { parseRuntime, SLEEPER_URL } from "./sleeper.ts";
export * from "./errors.ts";
export * from "./job.ts";
export * from "./runner.ts";
export * from "./proc_launcher.ts";
export * from "./sleeper_launcher.ts";
