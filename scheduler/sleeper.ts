// deno-lint-ignore-file no-console
/**
 * The seed's test job: sleeps `runtime` seconds and exits 0. Run it with no permissions:
 *
 * ```sh
 * deno run scheduler/sleeper.ts 2      # sleeps 2 s
 * deno run scheduler/sleeper.ts 0.05   # fractions allowed
 * ```
 *
 * Like the seed's `Sleeper`, it ignores SIGINT: Ctrl-C reaches the whole terminal process
 * group, and the scheduler, not the job, decides the job's fate. SIGTERM ends it at once (the
 * default action). A missing, negative or non-numeric runtime prints one line on stderr and
 * exits 2. Launched through `Proc.deno`, it also exits when its parent dies (the lifeline).
 *
 * @module
 */

import { parseArgs } from "node:util";

/**
 * The URL of this module, for launchers: `Proc.deno(SLEEPER_URL, { args: ["2"] })`.
 *
 * @example
 * ```ts
 * import { SLEEPER_URL } from "./sleeper.ts";
 * console.log(SLEEPER_URL.pathname.endsWith("/scheduler/sleeper.ts")); // true
 * ```
 */
export const SLEEPER_URL: URL = new URL("./sleeper.ts", import.meta.url);

const USAGE = `Usage: deno run scheduler/sleeper.ts RUNTIME

Sleeps RUNTIME seconds (a number >= 0, fractions allowed) and exits 0. Ignores SIGINT; exits on
SIGTERM.

Examples:
  deno run scheduler/sleeper.ts 2
  deno run scheduler/sleeper.ts 0.05`;

/** The longest single timer delay (setTimeout fires at once beyond 2^31 - 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Parses the sleeper's runtime argument: a number of seconds >= 0 (fractions and exponents,
 * as `String(number)` writes them, allowed).
 *
 * @param arg The command-line argument, or `undefined` if none was given.
 * @returns The runtime in seconds.
 * @throws {TypeError} If `arg` is missing or not a number.
 * @throws {RangeError} If the number is negative or not finite.
 *
 * @example
 * ```ts
 * import { parseRuntime } from "./sleeper.ts";
 * console.log(parseRuntime("0.05")); // 0.05
 * ```
 */
export function parseRuntime(arg: string | undefined): number {
  if (arg === undefined) {
    throw new TypeError("Cannot run sleeper: missing RUNTIME (seconds, a number >= 0)");
  }
  const runtimeS = arg.trim() === "" ? NaN : Number(arg);
  if (Number.isNaN(runtimeS)) {
    throw new TypeError(
      `Cannot run sleeper: RUNTIME must be a number of seconds >= 0, got ${JSON.stringify(arg)}`,
    );
  }
  if (!Number.isFinite(runtimeS) || runtimeS < 0) {
    throw new RangeError(
      `Cannot run sleeper: RUNTIME must be a finite number of seconds >= 0, got ${arg}`,
    );
  }
  return runtimeS;
}

/**
 * The sleeper's entry point: sleeps the runtime given in `args`, ignoring SIGINT meanwhile.
 *
 * @param args The command-line arguments: `[RUNTIME]`, or `["--help"]`; a leading `--` (as
 *   `deno task x -- …` passes) is dropped.
 * @returns The exit code: 0 after sleeping or for `--help`, 2 for a bad argument.
 *
 * @example
 * ```ts
 * import { main } from "./sleeper.ts";
 * console.log(await main(["0.01"])); // 0
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const argv = args[0] === "--" ? args.slice(1) : args;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: argv,
      options: { help: { type: "boolean", short: "h" } },
      allowPositionals: true,
    });
    if (parsed.values.help) {
      console.log(USAGE);
      return 0;
    }
    positionals = parsed.positionals;
  } catch (error) {
    // parseArgs reads a negative number ("-1") as an unknown flag: take it as the RUNTIME.
    if (argv.length !== 1 || !/^-[\d.]/.test(argv[0] ?? "")) {
      return usageError(`Cannot run sleeper: ${(error as Error).message}`);
    }
    positionals = argv;
  }
  if (positionals.length > 1) {
    return usageError(`Cannot run sleeper: expected one RUNTIME, got ${positionals.length}`);
  }
  let runtimeS: number;
  try {
    runtimeS = parseRuntime(positionals[0]);
  } catch (error) {
    return usageError((error as Error).message);
  }

  const ignore = (): void => {};
  Deno.addSignalListener("SIGINT", ignore);
  try {
    const end = performance.now() + runtimeS * 1000;
    for (let left = end - performance.now(); left > 0; left = end - performance.now()) {
      await new Promise<void>((resolve) => setTimeout(resolve, Math.min(left, MAX_TIMER_MS)));
    }
  } finally {
    Deno.removeSignalListener("SIGINT", ignore);
  }
  return 0;
}

/** Prints a bad-argument message on one stderr line; returns the exit code, 2. */
function usageError(message: string): number {
  console.error(`${message} (see --help)`);
  return 2;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
