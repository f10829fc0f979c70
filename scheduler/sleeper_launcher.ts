/**
 * The launcher for the seed's test jobs: each job sleeps `runtime` seconds in a Deno child.
 *
 * @module
 */

import { Proc } from "../process/proc.ts";
import type { Launcher } from "./job.ts";
import { SLEEPER_URL } from "./sleeper.ts";

/** The payload of a sleeper job, as on the bus: how long it runs. */
export interface SleeperPayload {
  /** Seconds to sleep (a finite number >= 0; fractions allowed). */
  runtime: number;
}

/** Options for {@linkcode sleeperLauncher}. */
export interface SleeperLauncherOptions {
  /**
   * Where the sleepers' stdout and stderr go.
   * @default {"inherit"}
   */
  output?: "inherit" | "null";
  /**
   * How long a terminated sleeper has after SIGTERM before SIGKILL, ms.
   * @default {2000}
   */
  graceMs?: number;
}

/**
 * A launcher that runs each job as the sleeper (`Proc.deno(SLEEPER_URL)`, no permissions),
 * without a timeout: the runner owns timeouts.
 *
 * @param options See {@linkcode SleeperLauncherOptions}.
 * @returns A launcher for {@linkcode SleeperPayload} jobs; it throws (the job fails) if
 *   `runtime` is not a finite number >= 0.
 *
 * @example
 * ```ts
 * import { Runner } from "./runner.ts";
 * import { sleeperLauncher, type SleeperPayload } from "./sleeper_launcher.ts";
 * await using runner = new Runner<SleeperPayload>({
 *   launch: sleeperLauncher({ output: "null" }),
 *   timeoutMs: 10_000,
 * });
 * const job = runner.submit({ runtime: 0.1 }, { priority: 3 });
 * console.log((await job.done).state); // "succeeded"
 * ```
 */
export function sleeperLauncher(options: SleeperLauncherOptions = {}): Launcher<SleeperPayload> {
  const { output, graceMs } = options;
  return (job) => {
    const runtime = job.payload?.runtime;
    if (typeof runtime !== "number" || !Number.isFinite(runtime) || runtime < 0) {
      throw new RangeError(
        `Cannot launch sleeper: 'runtime' must be a finite number >= 0, got ${String(runtime)}`,
      );
    }
    return Proc.deno(SLEEPER_URL, {
      args: [String(runtime)],
      ...(output !== undefined && { output }),
      ...(graceMs !== undefined && { graceMs }),
    }).start();
  };
}
