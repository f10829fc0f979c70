/**
 * `scheduler/`: run jobs by priority on a bounded number of slots. Built on `process/` and `core/`.
 *
 * @module
 */

export { parseRuntime, SLEEPER_URL } from "./sleeper.ts";
export * from "./errors.ts";
export * from "./job.ts";
export * from "./runner.ts";
export * from "./proc_launcher.ts";
export * from "./sleeper_launcher.ts";
export * from "./job_launcher.ts";
export * from "./command_launcher.ts";
export type { UserAccount } from "./user_account.ts";
export type { OutputStream } from "./job_output.ts";
export * from "./command_spec.ts";
export * from "./job_result.ts";
