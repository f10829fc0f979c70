/**
 * The frame of every CLI's `main()`: flags read, `--help` answered, a bad command line refused
 * with one line and the usage (exit 2), then the CLI's own work.
 *
 * @module
 */

import { UsageError } from "./errors.ts";
import { type FlagOptions, type Flags, HELP_FLAG, parseFlags } from "./flags.ts";
import { type CliIo, cliIo, type MainOptions } from "./main_options.ts";
import { logFormatFlag } from "./log_format.ts";

/** The flag every CLI takes: `--log-format text|json` (see `log_format.ts`). */
export const LOG_FORMAT_FLAG = { "log-format": { type: "string" } } as const;

/** The exit code of a bad command line. */
export const EXIT_USAGE = 2;

/** What {@linkcode runCli} needs to know of one CLI. */
export interface CliSpec<O extends FlagOptions, C> {
  /** The CLI's short name, first word of its error lines: `"bus"` → `bus: unknown option…`. */
  name: string;
  /** The usage text (see `formatUsage`), printed by `--help` and after a bad command line. */
  usage: string;
  /** The flags, as `parseArgs` takes them; `-h`, `--help` is added. */
  options: O;
  /**
   * Whether arguments that are not flags are accepted.
   * @default {false}
   */
  positionals?: boolean;
  /**
   * Checks the parsed flags and makes the CLI's config of them.
   * @throws {UsageError} For a bad value: the message is printed, the exit code is 2.
   */
  configure(flags: Flags<O & typeof HELP_FLAG>, io: CliIo): C;
  /** Does the CLI's work; returns its exit code. */
  run(config: C, io: CliIo): Promise<number>;
}

/**
 * Runs a CLI: parses `args` (see `parseFlags`), prints the usage on stdout and returns 0 for
 * `-h`/`--help`, reads `--log-format` (every CLI takes it: the form of `io.log` / `io.warn`
 * lines), prints `name: <one line>` and the usage on stderr and returns 2 for a
 * {@linkcode UsageError}, else returns what `spec.run` returns. Other errors propagate.
 *
 * @param spec See {@linkcode CliSpec}.
 * @param args The command-line arguments (a leading `--` is dropped).
 * @param options See {@linkcode MainOptions}.
 * @returns The exit code.
 *
 * @example
 * ```ts
 * import { integerFlag, runCli } from "./mod.ts";
 * const code = await runCli({
 *   name: "hello",
 *   usage: "Usage: deno task hello [-- --times N]",
 *   options: { times: { type: "string", default: "1" } },
 *   configure: ({ values }) => integerFlag("--times", values.times, { min: 1 }),
 *   run: async (times, io) => {
 *     for (let i = 0; i < times; i++) io.out("hello");
 *     return 0;
 *   },
 * }, ["--times", "-1"], { stderr: () => {} });
 * console.log(code); // 2
 * ```
 */
export async function runCli<const O extends FlagOptions, C>(
  spec: CliSpec<O, C>,
  args: readonly string[],
  options: MainOptions = {},
): Promise<number> {
  let io = cliIo(options);
  let config: C;
  try {
    const flagOptions = { ...LOG_FORMAT_FLAG, ...spec.options, ...HELP_FLAG } as
      & O
      & typeof HELP_FLAG;
    const flags = parseFlags(args, flagOptions, { positionals: spec.positionals ?? false });
    if ((flags.values as { help?: boolean }).help) {
      io.out(spec.usage);
      return 0;
    }
    const format = (flags.values as { "log-format"?: unknown })["log-format"];
    const logFormat = logFormatFlag(typeof format === "string" ? format : undefined);
    if (logFormat !== "text") io = cliIo({ ...options, logFormat });
    config = spec.configure(flags, io);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`${spec.name}: ${error.message}`);
    io.err(spec.usage);
    return EXIT_USAGE;
  }
  return await spec.run(config, io);
}
