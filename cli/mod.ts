/**
 * The internal harness of this project's command-line programs (`deno task bus`, `scheduler`,
 * `producer`, `demo`, `process-demo`): not part of the library that the root `mod.ts` exports.
 *
 * A new CLI starts from {@linkcode runCli}: its flags, a `configure` that checks them (with
 * {@linkcode integerFlag} and {@linkcode secondsFlag}, throwing {@linkcode UsageError}), and a
 * `run` that does the work and returns the exit code. Every CLI then drops the leading `--` of
 * `deno task x -- …`, answers `--help`, refuses a bad command line with one line and the usage
 * (exit 2), takes negative numbers as values, and lets tests inject its output, clock and stop
 * signal ({@linkcode MainOptions}).
 *
 * @example
 * ```ts
 * import { formatUsage, type MainOptions, runCli, secondsFlag } from "./mod.ts";
 *
 * const USAGE = formatUsage({
 *   command: "deno task nap",
 *   about: "Waits, then says so.",
 *   sections: [{ title: "Options", rows: [["--for S", "seconds to wait (default 0)"]] }],
 *   examples: ["deno task nap -- --for 0.5"],
 * });
 *
 * function main(args: string[], options: MainOptions = {}): Promise<number> {
 *   return runCli({
 *     name: "nap",
 *     usage: USAGE,
 *     options: { for: { type: "string", default: "0" } },
 *     configure: ({ values }) => secondsFlag("--for", values.for),
 *     run: async (s, io) => {
 *       await new Promise<void>((resolve) => io.clock.setTimeout(() => resolve(), s * 1000));
 *       io.log(`waited ${s} s`);
 *       return 0;
 *     },
 *   }, args, options);
 * }
 *
 * const err: string[] = [];
 * console.log(await main(["--", "--for", "-1"], { stderr: (line) => err.push(line) })); // 2
 * console.log(err[0]); // "nap: --for must be a number of seconds >= 0, got '-1'"
 * ```
 *
 * @module
 */

export * from "./credentials.ts";
export * from "./errors.ts";
export * from "./flag_values.ts";
export * from "./flags.ts";
export * from "./log_format.ts";
export * from "./main_options.ts";
export * from "./run_cli.ts";
export * from "./stamp.ts";
export * from "./usage.ts";
export * from "./wording.ts";
