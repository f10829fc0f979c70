/**
 * A command job's environment: the scheduler's, minus what the scheduler uses for credentials,
 * plus the job's own `env`; or, with `clearEnv`, only `PATH`, `HOME` and `LANG` plus the job's.
 *
 * @module
 */

/** Variables the scheduler uses for credentials: never passed on to a job. */
export const CREDENTIAL_VARIABLES: readonly string[] = ["SCHED_TOKEN"];

/** The variables `clearEnv` keeps from the scheduler's environment. */
export const KEPT_VARIABLES: readonly string[] = ["PATH", "HOME", "LANG"];

/** Options for {@linkcode baseEnvironment}. */
export interface BaseEnvironmentOptions {
  /**
   * Keep only {@linkcode KEPT_VARIABLES}.
   * @default {false}
   */
  clearEnv?: boolean;
  /**
   * Variables that override the scheduler's (a `--user`'s `HOME`, `USER`, `LOGNAME`).
   * @default {{}}
   */
  overrides?: Record<string, string>;
}

/**
 * The part of every job's environment that comes from the scheduler: its own environment without
 * {@linkcode CREDENTIAL_VARIABLES} (or only {@linkcode KEPT_VARIABLES} with `clearEnv`), then
 * `overrides`.
 *
 * @param env The scheduler's environment (`Deno.env.toObject()`).
 * @param options See {@linkcode BaseEnvironmentOptions}.
 * @returns A new object.
 * @example
 * ```ts
 * import { baseEnvironment } from "./job_env.ts";
 * const env = { PATH: "/bin", SCHED_TOKEN: "secret", TERM: "xterm" };
 * console.log(baseEnvironment(env)); // { PATH: "/bin", TERM: "xterm" }
 * console.log(baseEnvironment(env, { clearEnv: true })); // { PATH: "/bin" }
 * ```
 */
export function baseEnvironment(
  env: Readonly<Record<string, string>>,
  options: BaseEnvironmentOptions = {},
): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (CREDENTIAL_VARIABLES.includes(name)) continue;
    if (options.clearEnv && !KEPT_VARIABLES.includes(name)) continue;
    base[name] = value;
  }
  return { ...base, ...options.overrides };
}

/**
 * A job's whole environment: the scheduler's part, then the job's `env` on top.
 *
 * @param base From {@linkcode baseEnvironment}.
 * @param jobEnv The job's `env`.
 * @returns A new object.
 * @example
 * ```ts
 * import { jobEnvironment } from "./job_env.ts";
 * console.log(jobEnvironment({ PATH: "/bin" }, { FOO: "1" })); // { PATH: "/bin", FOO: "1" }
 * ```
 */
export function jobEnvironment(
  base: Readonly<Record<string, string>>,
  jobEnv: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  return jobEnv === undefined ? { ...base } : { ...base, ...jobEnv };
}
