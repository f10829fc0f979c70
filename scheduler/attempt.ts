/**
 * One launch of a job: its process, its running-time deadline, pausing it and terminating it.
 *
 * @module
 */

import type { Clock } from "../core/clock.ts";
import { Deadline } from "../core/deadline.ts";
import type { FinalState, LaunchedJob, LaunchOutcome } from "./job.ts";

/** What an {@linkcode Attempt} tells its runner. */
export interface AttemptEvents {
  /** The attempt ran past its running time (paused time excluded). */
  onTimeout(): void;
  /**
   * The launched job ended, by itself or after {@linkcode Attempt.stop}; `error` is set when
   * its `wait()` failed instead.
   */
  onEnd(outcome: LaunchOutcome, error: string | undefined): void;
}

/** The outcome an attempt ends with when its launcher or its `wait()` failed. */
export const LAUNCH_ERROR: LaunchOutcome = { result: "error", code: null };

/**
 * One launch of a job. The runner makes one per start, runs it with the launched job, may
 * suspend, resume and stop it, and marks it ended (once) when its process has ended.
 *
 * @example
 * ```ts
 * import { Attempt } from "./attempt.ts";
 * import { systemClock } from "../core/clock.ts";
 * const attempt = new Attempt();
 * const ended = Promise.withResolvers<string>();
 * attempt.run({
 *   wait: () => Promise.resolve({ result: "success" as const, code: 0 }),
 *   terminate: () => Promise.resolve(),
 *   suspend() {},
 *   resume() {},
 * }, 1000, systemClock, {
 *   onTimeout: () => {},
 *   onEnd: (outcome) => attempt.end() && ended.resolve(outcome.result),
 * });
 * console.log(await ended.promise); // "success"
 * ```
 */
export class Attempt {
  #launched: LaunchedJob | undefined;
  #deadline: Deadline | undefined;
  #stopped = false;
  #ended = false;
  #ending: PromiseWithResolvers<void> | undefined;

  /** Whether the runner terminated this attempt: then its end changes nothing else. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Settles once a stopped attempt's process has ended; `undefined` unless {@linkcode
   * Attempt.stop} had a process to wait for.
   */
  get ending(): Promise<void> | undefined {
    return this.#ending?.promise;
  }

  /**
   * Starts watching a launched job: its deadline runs from now, and `events.onEnd` is called
   * when its `wait()` settles (never synchronously).
   *
   * @param launched What the launcher returned.
   * @param timeoutMs Running time allowed, ms.
   * @param clock Where the deadline's time comes from.
   * @param events Where the timeout and the end are reported.
   */
  run(launched: LaunchedJob, timeoutMs: number, clock: Clock, events: AttemptEvents): void {
    this.#launched = launched;
    this.#deadline = new Deadline(timeoutMs, () => events.onTimeout(), { clock });
    const onError = (error: unknown): void => events.onEnd(LAUNCH_ERROR, message(error));
    try {
      launched.wait().then((outcome) => events.onEnd(outcome, undefined), onError);
    } catch (error) {
      queueMicrotask(() => onError(error));
    }
  }

  /** Pauses the job and its deadline (evict mode `suspend`). */
  suspend(): void {
    this.#deadline?.pause();
    try {
      this.#launched?.suspend();
    } catch {
      // a job that cannot be paused keeps running until it is resumed or ends
    }
  }

  /** Continues a paused job and its deadline. */
  resume(): void {
    this.#deadline?.resume();
    try {
      this.#launched?.resume();
    } catch {
      // it ends by itself, or by its timeout
    }
  }

  /**
   * Terminates the job (continuing it first if `suspended`, so it can handle SIGTERM).
   *
   * @param suspended Whether the job is paused now.
   * @returns {@linkcode Attempt.ending}, or `undefined` if there is no process to wait for
   *   (never launched, or already ended).
   */
  stop(suspended: boolean): Promise<void> | undefined {
    this.#stopped = true;
    this.#deadline?.cancel();
    const launched = this.#launched;
    if (launched === undefined || this.#ended) return undefined;
    this.#ending = Promise.withResolvers<void>();
    try {
      if (suspended) launched.resume();
      launched.terminate().catch(() => {});
    } catch {
      // its wait() still tells when it ends
    }
    return this.#ending.promise;
  }

  /**
   * Marks the attempt ended and settles {@linkcode Attempt.ending}.
   *
   * @returns `false` if it had already ended (the caller then does nothing more).
   */
  end(): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    this.#deadline?.cancel();
    this.#ending?.resolve();
    return true;
  }
}

/**
 * What the end of an attempt the runner did not stop makes of its job.
 *
 * @param outcome What the launched job reported.
 * @param error The launcher's or `wait()`'s error, if one failed.
 * @returns The final state and its reason.
 */
export function finalStateOf(
  outcome: LaunchOutcome,
  error: string | undefined,
): [FinalState, string | undefined] {
  if (error !== undefined) return ["failed", error];
  if (outcome.startError !== undefined) return ["failed", `could not start: ${outcome.startError}`];
  switch (outcome.result) {
    case "success":
      return ["succeeded", undefined];
    case "timeout":
      return ["timed_out", "the launcher timed out"];
    case "error":
      return [
        "failed",
        outcome.code === null && outcome.signal
          ? `killed by ${outcome.signal}`
          : `exit code ${outcome.code}`,
      ];
    default:
      return ["failed", "terminated"];
  }
}

/**
 * An error's message, or the thrown value in words.
 *
 * @param error What was thrown.
 * @returns Its message.
 */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
