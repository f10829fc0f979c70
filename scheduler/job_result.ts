/**
 * What a job's end reports back to whoever submitted it: exit code or signal, times, the
 * scheduler and attempt, and the tails of its output. Built by the scheduler, carried by the
 * bus in the final `event` (and a duplicate `job_request`'s answer), read by clients.
 *
 * @module
 */

/** A finished job's result (`docs/protocol.md`, "The result"). */
export interface JobResult {
  /** The process's exit code; `null` when killed by a signal or never started. */
  exitCode: number | null;
  /** The signal that ended it (`"SIGKILL"`), else `null`. */
  signal: string | null;
  /** Running time of this attempt, milliseconds (suspended time excluded). */
  durationMs: number;
  /** When this attempt started, epoch ms (`null` when it never started). */
  startedAt: number | null;
  /** When it ended, epoch ms. */
  endedAt: number;
  /** The scheduler that ran it. */
  scheduler: string;
  /** Which attempt this was (1 on the first run). */
  attempts: number;
  /** Why the job could not start at all ("no such executable: ffmpeg"); never retried. */
  startError?: string;
  /** The end of its standard output (valid UTF-8; invalid bytes replaced). */
  stdoutTail?: string;
  /** The end of its standard error. */
  stderrTail?: string;
  /** Whether `stdoutTail` is only the end of more output. */
  stdoutTruncated?: boolean;
  /** Whether `stderrTail` is only the end of more output. */
  stderrTruncated?: boolean;
  /** Where the whole standard output was written (`--output-dir`). */
  stdoutFile?: string;
  /** Where the whole standard error was written. */
  stderrFile?: string;
}

/**
 * The exit code a CLI reports for a job, as shells and Slurm do: the job's own exit code,
 * `128 + N` when signal N killed it.
 *
 * @param result The job's result.
 * @returns The exit code, or `undefined` when the job never ran to an exit.
 * @example
 * ```ts
 * import { resultExitCode } from "./job_result.ts";
 * console.log(resultExitCode({ exitCode: null, signal: "SIGKILL" })); // 137
 * console.log(resultExitCode({ exitCode: 3, signal: null })); // 3
 * ```
 */
export function resultExitCode(
  result: Pick<JobResult, "exitCode" | "signal">,
): number | undefined {
  if (result.exitCode !== null) return result.exitCode;
  if (result.signal === null) return undefined;
  const number = SIGNAL_NUMBERS[result.signal];
  return number === undefined ? undefined : 128 + number;
}

/** Linux signal numbers by name (the ones a job is likely to die of). */
const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGXCPU: 24,
  SIGXFSZ: 25,
};
