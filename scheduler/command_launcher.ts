/**
 * The launcher of command jobs: runs a job's argv (no shell) in its working directory and
 * environment, in a process group of its own, with a bounded tail of its output (and the whole
 * of it in files with an output directory), and no orphans if the scheduler dies.
 *
 * @module
 */

import { GroupReaper } from "../process/group_reaper.ts";
import { Proc, type ProcOutcome } from "../process/proc.ts";
import type { CommandSpec } from "./command_spec.ts";
import type { JobInfo, LaunchedJob, Launcher, LaunchOutcome } from "./job.ts";
import { baseEnvironment, jobEnvironment } from "./job_env.ts";
import { JobOutput, type OutputStream } from "./job_output.ts";
import { startError } from "./start_check.ts";
import type { UserAccount } from "./user_account.ts";

/** Where util-linux's `setsid` usually is. */
export const SETSID = "/usr/bin/setsid";

/** Options for {@linkcode commandLauncher}. */
export interface CommandLauncherOptions {
  /**
   * The scheduler's environment, passed on to jobs minus its credentials (see `job_env.ts`).
   * @default {Deno.env.toObject()}
   */
  env?: Record<string, string>;
  /**
   * Give jobs only `PATH`, `HOME`, `LANG` of the scheduler's environment (plus their own).
   * @default {false}
   */
  clearEnv?: boolean;
  /**
   * Run jobs as this user (the scheduler must be root); `HOME`, `USER` and `LOGNAME` are the
   * user's.
   * @default {undefined}
   */
  user?: UserAccount | undefined;
  /**
   * How many trailing bytes of each output stream a job's result keeps.
   * @default {16384}
   */
  outputTailBytes?: number;
  /**
   * A directory where each job's output is written in full (`<job id>.out`, `.err`).
   * @default {undefined}
   */
  outputDir?: string | undefined;
  /**
   * Time between SIGTERM and SIGKILL for a job without its own `grace`, ms.
   * @default {2000}
   */
  graceMs?: number;
  /**
   * The reaper told each job's process group, so none outlives the scheduler (see
   * `group_reaper.ts`); without one, a job outlives a scheduler killed by SIGKILL.
   * @default {undefined}
   */
  reaper?: GroupReaper | undefined;
  /**
   * util-linux's `setsid`, which gives each job its own process group at the cost of one exec;
   * `"detached"` uses Deno's `detached: true` (a fork of the whole scheduler) instead.
   * @default {"/usr/bin/setsid" if it exists, else "detached"}
   */
  group?: string;
  /**
   * Called with each chunk of a running job's output, for jobs submitted with `follow: true`.
   * @default {undefined}
   */
  onOutput?: ((id: string, stream: OutputStream, chunk: Uint8Array) => void) | undefined;
}

/**
 * A launcher for command jobs ({@linkcode CommandSpec}): checks that the job can start (its
 * `cwd`, its executable), then runs its argv as a `Proc` in its own process group, without a
 * timeout (the runner owns timeouts) and with the job's `grace`. A job that cannot start does
 * not run: it ends `failed` with `startError` ("no such executable: ffmpeg"). The outcome
 * carries the signal that ended the job and its output's tails (and files).
 *
 * @param options See {@linkcode CommandLauncherOptions}.
 * @returns The launcher; it never throws for a job that cannot start.
 * @example
 * ```ts
 * import { Runner } from "./runner.ts";
 * import { commandLauncher } from "./command_launcher.ts";
 * import type { CommandSpec } from "./command_spec.ts";
 * await using runner = new Runner<CommandSpec>({ launch: commandLauncher({ env: { PATH: "/usr/bin:/bin" } }) });
 * const job = runner.submit({ priority: 1, command: ["sh", "-c", "echo hi; exit 3"] });
 * const outcome = await job.done;
 * console.log(outcome.reason, outcome.launch?.output?.stdoutTail); // "exit code 3" "hi\n"
 * ```
 */
export function commandLauncher(options: CommandLauncherOptions = {}): Launcher<CommandSpec> {
  const user = options.user;
  const overrides = user === undefined
    ? {}
    : { HOME: user.home, USER: user.name, LOGNAME: user.name };
  const base = baseEnvironment(options.env ?? Deno.env.toObject(), {
    clearEnv: options.clearEnv ?? false,
    overrides,
  });
  const group = options.group ?? (isFile(SETSID) ? SETSID : "detached");
  const settings: LaunchSettings = { ...options, base, group };
  return (job) => launch(job, settings);
}

/** What every launch needs. */
interface LaunchSettings extends CommandLauncherOptions {
  base: Record<string, string>;
  group: string;
}

function launch(job: JobInfo<CommandSpec>, settings: LaunchSettings): LaunchedJob {
  const spec = job.payload;
  const [executable, ...args] = spec.command;
  const env = jobEnvironment(settings.base, spec.env);
  const why = startError(executable!, { cwd: spec.cwd, path: env.PATH });
  if (why !== undefined) return notStarted(why);
  let output: JobOutput;
  try {
    output = new JobOutput(job.id, {
      tailBytes: settings.outputTailBytes,
      dir: settings.outputDir,
    });
  } catch (error) {
    return notStarted(`cannot write its output in ${settings.outputDir}: ${message(error)}`);
  }
  const onOutput = spec.follow === true ? settings.onOutput : undefined;
  const proc = new Proc(executable!, {
    args,
    env,
    clearEnv: true,
    ...(spec.cwd !== undefined && { cwd: spec.cwd }),
    output: "chunks",
    onChunk: (chunk, stream) => {
      output.push(chunk, stream);
      onOutput?.(job.id, stream, chunk);
    },
    graceMs: spec.grace !== undefined ? spec.grace * 1000 : settings.graceMs ?? 2000,
    group: settings.group,
    ...(settings.user && { uid: settings.user.uid, gid: settings.user.gid }),
  });
  try {
    proc.start();
  } catch (error) {
    output.close();
    return notStarted(message(error));
  }
  const pid = proc.pid!;
  const reaper = settings.reaper;
  reaper?.watch(pid);
  const done = proc.wait().then(async (outcome) => {
    await proc.kill(); // what the job left in its group goes with it
    reaper?.unwatch(pid);
    return launchOutcome(outcome, output.close(), executable!, settings.group !== "detached");
  });
  return {
    wait: () => done,
    terminate: () => proc.terminate(),
    suspend: () => proc.suspend(),
    resume: () => proc.resume(),
  };
}

/** A launched job that never ran: it ends at once, failed, with `startError`. */
function notStarted(startError: string): LaunchedJob {
  const outcome: LaunchOutcome = { result: "error", code: null, signal: null, startError };
  return {
    wait: () => Promise.resolve(outcome),
    terminate: () => Promise.resolve(),
    suspend(): void {},
    resume(): void {},
  };
}

/** What setsid says when it cannot exec the job's command. */
const SETSID_FAILED = /^setsid: failed to execute [^\n]*: ([^\n]*)\n?$/;

function launchOutcome(
  proc: ProcOutcome,
  output: NonNullable<LaunchOutcome["output"]>,
  executable: string,
  viaSetsid: boolean,
): LaunchOutcome {
  const outcome: LaunchOutcome = { result: proc.result, code: proc.code, signal: proc.signal };
  // setsid could not exec the command (checked before, but things change, and a --user may
  // not be allowed what the scheduler is): exit 126/127 and its one line.
  const failed = viaSetsid && (proc.code === 126 || proc.code === 127)
    ? SETSID_FAILED.exec(output.stderrTail ?? "")
    : null;
  if (failed) {
    const why = failed[1] === "No such file or directory"
      ? "no such executable"
      : failed[1] === "Permission denied"
      ? "permission denied"
      : `cannot execute (${failed[1]})`;
    return { result: "error", code: null, signal: null, startError: `${why}: ${executable}` };
  }
  outcome.output = output;
  return outcome;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
