/**
 * The runner's options, what a job is submitted with, and their checks.
 *
 * @module
 */

import { type Clock, systemClock } from "../core/clock.ts";
import { isPriority, type JobView, type Launcher, MAX_PRIORITY, MIN_PRIORITY } from "./job.ts";

/**
 * What happens to a running job evicted by a more urgent one:
 * - `requeue`: terminated, then waits again, keeping its place among equals (event `requeued`);
 * - `kill`: terminated for good (event `evicted`, final), as the seed's scheduler does;
 * - `suspend`: paused (SIGSTOP for a `Proc`), waits without a slot and is resumed when it is the
 *   most urgent waiting job and a slot frees (events `suspended`, `resumed`); its timeout clock
 *   stops meanwhile.
 */
export type EvictMode = "requeue" | "kill" | "suspend";

const EVICT_MODES: readonly EvictMode[] = ["requeue", "kill", "suspend"];

/** Options for `Runner`. */
export interface RunnerOptions<P> {
  /** Starts a job (e.g. `procLauncher()` or `sleeperLauncher()`); required. */
  launch: Launcher<P>;
  /**
   * How many jobs may run at once.
   * @default {5}
   */
  slots?: number;
  /**
   * What eviction does to the evicted job (see {@linkcode EvictMode}).
   * @default {"requeue"}
   */
  evict?: EvictMode;
  /**
   * Running time (ms, since its latest start or resume) before a job may be evicted. A waiting
   * job kept out only by this is re-evaluated by a timer as soon as a victim becomes eligible.
   * @default {0}
   */
  minRunMs?: number;
  /**
   * Aging: a waiting job's effective priority improves by one level every `agingMs` ms since it
   * was submitted, down to 0; `0` turns aging off.
   *
   * Waiting jobs are ordered by `(priority * agingMs + submittedAt, seq)`, which is exactly the
   * order of their aged levels without re-keying the heap; among jobs at the same aged level,
   * the one that reached it first goes first. For example with `agingMs: 1000`, a priority-5 job
   * submitted at t=0 (key 5000) goes before a priority-2 job submitted at t=3500 (key 5500): at
   * t=3500 the first is at level 2 since t=3000.
   *
   * Aging decides who gets the next free slot; it never takes a slot by force. Eviction compares
   * the waiting job's own `priority` with the level each running job started at (its
   * `effectivePriority`), so an aged job that won a slot is protected like a job of that level,
   * and evictions cannot ping-pong.
   * @default {0}
   */
  agingMs?: number;
  /**
   * Default running time allowed per job attempt (ms); a job past it is terminated and reported
   * `timed_out`. Suspended time does not count.
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * Where time and timers come from.
   * @default {systemClock}
   */
  clock?: Clock;
}

/** Options for `Runner.submit`. */
export interface SubmitOptions {
  /**
   * The job's id; must not be the id of an unfinished job of this runner.
   * @default {"job-<n>", n the submission count}
   */
  id?: string;
  /**
   * Priority, an integer from {@linkcode MIN_PRIORITY} (most urgent) to {@linkcode MAX_PRIORITY}.
   * @default {5}
   */
  priority?: number;
  /**
   * Running time allowed per attempt, ms.
   * @default {the runner's timeoutMs}
   */
  timeoutMs?: number;
  /**
   * Whether the job may be evicted; `false` protects it from every eviction.
   * @default {true}
   */
  preemptible?: boolean;
  /**
   * Cancels the job when aborted (as {@linkcode Runner.cancel}).
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** A runner's state for status displays, from `Runner.snapshot`. */
export interface RunnerSnapshot<P> {
  /** Clock time of the snapshot, ms. */
  time: number;
  /** Number of slots. */
  slots: number;
  /** Jobs holding a slot, in the order they (last) started. */
  running: JobView<P>[];
  /** Waiting jobs (suspended ones included), in the order they would get a slot. */
  waiting: JobView<P>[];
}

/** A runner's options, checked, with their defaults. */
export interface RunnerSettings<P> {
  /** See {@linkcode RunnerOptions.launch}. */
  launch: Launcher<P>;
  /** See {@linkcode RunnerOptions.slots}. */
  slots: number;
  /** See {@linkcode RunnerOptions.evict}. */
  evict: EvictMode;
  /** See {@linkcode RunnerOptions.minRunMs}. */
  minRunMs: number;
  /** See {@linkcode RunnerOptions.agingMs}. */
  agingMs: number;
  /** See {@linkcode RunnerOptions.timeoutMs}. */
  timeoutMs: number;
  /** See {@linkcode RunnerOptions.clock}. */
  clock: Clock;
}

/**
 * Checks a runner's options and fills in the defaults.
 *
 * @param options The options given to `new Runner()`.
 * @returns The settings.
 * @throws {TypeError} If `launch` is not a function or `clock` not a clock.
 * @throws {RangeError} If a number option is out of range or `evict` unknown.
 *
 * @example
 * ```ts
 * import { runnerSettings } from "./runner_options.ts";
 * const settings = runnerSettings({ launch: () => { throw new Error("unused"); } });
 * console.log(settings.slots, settings.evict); // 5 "requeue"
 * ```
 */
export function runnerSettings<P>(options: RunnerOptions<P>): RunnerSettings<P> {
  const what = "Cannot create Runner";
  const o = options ?? ({} as RunnerOptions<P>);
  if (typeof o.launch !== "function") {
    throw new TypeError(`${what}: 'launch' must be a function, got ${typeof o.launch}`);
  }
  const slots = o.slots ?? 5;
  if (!Number.isInteger(slots) || slots < 1) {
    throw new RangeError(`${what}: 'slots' must be a positive integer, got ${String(slots)}`);
  }
  const evict = o.evict ?? "requeue";
  if (!EVICT_MODES.includes(evict)) {
    throw new RangeError(
      `${what}: 'evict' must be one of ${EVICT_MODES.join(", ")}, got ${String(evict)}`,
    );
  }
  const clock = o.clock ?? systemClock;
  if (
    typeof clock?.now !== "function" || typeof clock.setTimeout !== "function" ||
    typeof clock.clearTimeout !== "function"
  ) {
    throw new TypeError(`${what}: 'clock' must have now, setTimeout and clearTimeout`);
  }
  return {
    launch: o.launch,
    slots,
    evict,
    minRunMs: checkMs(what, "minRunMs", o.minRunMs ?? 0, false),
    agingMs: checkMs(what, "agingMs", o.agingMs ?? 0, false),
    timeoutMs: checkMs(what, "timeoutMs", o.timeoutMs ?? 10_000, true),
    clock,
  };
}

/** A job's submit options, checked, with their defaults (`id` stays optional). */
export interface JobSettings {
  /** See {@linkcode SubmitOptions.id}. */
  id: string | undefined;
  /** See {@linkcode SubmitOptions.priority}. */
  priority: number;
  /** See {@linkcode SubmitOptions.timeoutMs}. */
  timeoutMs: number;
  /** See {@linkcode SubmitOptions.preemptible}. */
  preemptible: boolean;
}

/**
 * Checks a job's submit options and fills in the defaults.
 *
 * @param options The options given to `Runner.submit`.
 * @param timeoutMs The runner's default timeout, ms.
 * @returns The settings.
 * @throws {RangeError} If `priority` or `timeoutMs` is out of range.
 * @throws {TypeError} If `id` is not a non-empty string or `preemptible` not a boolean.
 *
 * @example
 * ```ts
 * import { jobSettings } from "./runner_options.ts";
 * console.log(jobSettings({ priority: 2 }, 10_000).timeoutMs); // 10000
 * ```
 */
export function jobSettings(options: SubmitOptions, timeoutMs: number): JobSettings {
  const what = "Cannot submit job";
  const priority = checkPriority(what, options.priority ?? 5);
  const jobTimeoutMs = checkMs(what, "timeoutMs", options.timeoutMs ?? timeoutMs, true);
  const preemptible = options.preemptible ?? true;
  if (typeof preemptible !== "boolean") {
    throw new TypeError(`${what}: 'preemptible' must be a boolean, got ${typeof preemptible}`);
  }
  const id = options.id;
  if (id !== undefined && (typeof id !== "string" || id === "")) {
    throw new TypeError(`${what}: 'id' must be a non-empty string, got ${JSON.stringify(id)}`);
  }
  return { id, priority, timeoutMs: jobTimeoutMs, preemptible };
}

/**
 * Checks a priority.
 *
 * @param what What failed, for the message ("Cannot submit job").
 * @param priority The candidate.
 * @returns The priority.
 * @throws {RangeError} If it is not an integer {@linkcode MIN_PRIORITY}..{@linkcode MAX_PRIORITY}.
 *
 * @example
 * ```ts
 * import { checkPriority } from "./runner_options.ts";
 * console.log(checkPriority("Cannot submit job", 3)); // 3
 * ```
 */
export function checkPriority(what: string, priority: unknown): number {
  if (!isPriority(priority)) {
    throw new RangeError(
      `${what}: 'priority' must be an integer ${MIN_PRIORITY}..${MAX_PRIORITY}, got ${
        String(priority)
      }`,
    );
  }
  return priority;
}

function checkMs(what: string, name: string, value: unknown, positive: boolean): number {
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < 0 || (positive && value === 0)
  ) {
    const want = positive ? "a finite number > 0" : "a finite number >= 0";
    throw new RangeError(`${what}: '${name}' must be ${want}, got ${String(value)}`);
  }
  return value;
}
