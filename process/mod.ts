/**
 * `process/`: run OS processes as jobs. The base layer of the toolkit; it imports nothing else
 * of ours.
 *
 * @example A job with a timeout
 * ```ts
 * import { Proc } from "./mod.ts";
 * const proc = new Proc("sleep", { args: ["10"] }).start({ timeoutMs: 100 });
 * const outcome = await proc.wait();
 * console.log(outcome.result); // "timeout"
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

export * from "./clock.ts";
export * from "./deadline.ts";
export * from "./errors.ts";
export * from "./proc.ts";
export { liveProcCount, setSignalGuard } from "./exit_guard.ts";
export * from "./shutdown_signal.ts";
export * from "./sleep.ts";
