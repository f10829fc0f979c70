/**
 * sched: asynchronous priority task scheduling for Deno. Run OS processes as jobs, by
 * priority, on a bounded number of slots, with eviction and timeouts, and link many producers
 * and schedulers through a WebSocket bus. A Deno port and extension of the Python
 * `sched_utils`.
 *
 * This module re-exports the libraries (`core/`, `process/`, `scheduler/`, `bus/`, `producer/`); the
 * command-line programs are run through `deno task`.
 *
 * @example
 * ```ts
 * import { Deadline } from "./mod.ts";
 * using _deadline = new Deadline(10, () => {});
 * ```
 *
 * @module
 */

export * from "./core/mod.ts";
export * from "./process/mod.ts";
export * from "./scheduler/mod.ts";
export * from "./bus/mod.ts";
export * from "./producer/mod.ts";
