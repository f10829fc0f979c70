/**
 * `process/`: run OS processes as jobs. Built on `core/` only.
 *
 * @example A job with a timeout
 * ```ts
 * import { Proc } from "./mod.ts";
 * const proc = new Proc("sleep", { args: ["10"] }).start({ timeoutMs: 100 });
 * const outcome = await proc.wait();
 * console.log(outcome.result); // "timeout"
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./proc.ts";
export { holdSignals, liveProcCount, setSignalGuard } from "./exit_guard.ts";
export * from "./shutdown_signal.ts";
export * from "./group_reaper.ts";
