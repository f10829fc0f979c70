/**
 * The default launcher for OS commands: each job's payload names a command, run as a `Proc`.
 *
 * @module
 */

import { Proc, type ProcOptions } from "../process/proc.ts";
import type { Launcher } from "./job.ts";

/** The payload {@linkcode procLauncher} expects: a command and how to run it. */
export interface ProcPayload {
  /** The executable (looked up in `PATH`). */
  command: string;
  /** Its arguments. */
  args?: string[];
  /** Environment variables added to the inherited ones. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
}

/** Options for {@linkcode procLauncher}. */
export interface ProcLauncherOptions {
  /**
   * Where the jobs' stdout and stderr go.
   * @default {"inherit"}
   */
  output?: "inherit" | "null";
  /**
   * How long a terminated job has after SIGTERM before SIGKILL, ms.
   * @default {2000}
   */
  graceMs?: number;
}

/**
 * A launcher that runs each job as a {@linkcode Proc} (its own process group), without a
 * timeout: the runner owns timeouts.
 *
 * @param options See {@linkcode ProcLauncherOptions}.
 * @returns A launcher for {@linkcode ProcPayload} jobs; it throws (the job fails) with a
 *   `TypeError` if the payload's `command` is not a non-empty string, or a `ProcSpawnError` if
 *   the executable could not be started.
 *
 * @example
 * ```ts
 * import { Runner } from "./runner.ts";
 * import { procLauncher, type ProcPayload } from "./proc_launcher.ts";
 * await using runner = new Runner<ProcPayload>({
 *   launch: procLauncher({ output: "null", graceMs: 500 }),
 *   slots: 2,
 * });
 * const ok = runner.submit({ command: "true" }, { priority: 0 });
 * const bad = runner.submit({ command: "sh", args: ["-c", "exit 3"] });
 * console.log((await ok.done).state, (await bad.done).reason); // "succeeded" "exit code 3"
 * ```
 */
export function procLauncher(options: ProcLauncherOptions = {}): Launcher<ProcPayload> {
  const { output, graceMs } = options;
  const procOptions: ProcOptions = {
    ...(output !== undefined && { output }),
    ...(graceMs !== undefined && { graceMs }),
  };
  return (job) => startProc(job.payload, procOptions);
}

function startProc(payload: ProcPayload, options: ProcOptions): Proc {
  if (typeof payload?.command !== "string" || payload.command === "") {
    throw new TypeError(
      `Cannot launch job: 'command' must be a non-empty string, got ${
        JSON.stringify(payload?.command)
      }`,
    );
  }
  const { command, args, env, cwd } = payload;
  return new Proc(command, {
    ...options,
    ...(args !== undefined && { args }),
    ...(env !== undefined && { env }),
    ...(cwd !== undefined && { cwd }),
  }).start();
}
