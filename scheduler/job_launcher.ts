/**
 * One launcher for every kind of job a scheduler takes from the bus: the seed's sleeper jobs
 * (`runtime`) and command jobs (`command`), each handed to its own launcher.
 *
 * @module
 */

import type { CommandSpec } from "./command_spec.ts";
import type { JobInfo, Launcher } from "./job.ts";
import type { SleeperPayload } from "./sleeper_launcher.ts";

/** A payload a scheduler can run: a sleeper job's or a command job's. */
export type RunnablePayload = SleeperPayload | CommandSpec;

/** Options of {@linkcode jobLauncher}: the launcher of each kind; a kind without one is refused. */
export interface JobLauncherOptions {
  /** Runs sleeper jobs (`sleeperLauncher()`). */
  sleeper?: Launcher<SleeperPayload> | undefined;
  /** Runs command jobs. */
  command?: Launcher<CommandSpec> | undefined;
}

/**
 * A launcher that runs each job with the launcher of its kind: a payload with `command` is a
 * command job, any other a sleeper job. A kind with no launcher throws (the job fails with that
 * reason).
 *
 * @param options The launcher of each kind.
 * @returns The launcher.
 * @example
 * ```ts
 * import { jobLauncher } from "./job_launcher.ts";
 * import { sleeperLauncher } from "./sleeper_launcher.ts";
 * const launch = jobLauncher({ sleeper: sleeperLauncher({ output: "null" }) });
 * try {
 *   launch({ id: "j", priority: 1, attempts: 1, payload: { priority: 1, command: ["true"] } });
 * } catch (error) {
 *   console.log((error as Error).message); // this scheduler runs no command jobs
 * }
 * ```
 */
export function jobLauncher(options: JobLauncherOptions): Launcher<RunnablePayload> {
  const { sleeper, command } = options;
  return (job) => {
    const payload = job.payload;
    if (typeof payload === "object" && payload !== null && "command" in payload) {
      if (!command) throw new Error("this scheduler runs no command jobs");
      return command(job as JobInfo<CommandSpec>);
    }
    if (!sleeper) throw new Error("this scheduler runs no sleeper jobs");
    return sleeper(job as JobInfo<SleeperPayload>);
  };
}
