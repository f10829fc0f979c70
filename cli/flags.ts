/**
 * Reading a command line: `node:util`'s `parseArgs`, with the three things every CLI here needs
 * around it (the leading `--` of `deno task x -- …` dropped, negative numbers taken as values,
 * and errors in our words, as {@linkcode UsageError}s).
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./errors.ts";

/** The `options` of a `parseArgs` config: each flag's `type`, `short`, `default`, `multiple`. */
export type FlagOptions = NonNullable<ParseArgsConfig["options"]>;

/** The `-h`, `--help` flag every CLI takes; {@linkcode runCli} answers it. */
export const HELP_FLAG = { help: { type: "boolean", short: "h", default: false } } as const;

/** The `parseArgs` config {@linkcode parseFlags} builds: strict, positionals allowed. */
export type FlagsConfig<O extends FlagOptions> = {
  args: string[];
  options: O;
  strict: true;
  allowPositionals: true;
};

/** What {@linkcode parseFlags} returns: `parseArgs`' typed `values` and the `positionals`. */
export type Flags<O extends FlagOptions> = ReturnType<typeof parseArgs<FlagsConfig<O>>>;

/** Options for {@linkcode parseFlags}. */
export interface ParseFlagsOptions {
  /**
   * Whether arguments that are not flags are accepted (else: `unexpected argument 'x'`).
   * @default {false}
   */
  positionals?: boolean;
}

/**
 * Parses a command line strictly: drops a leading `--` (as `deno task x -- …` passes), reads a
 * negative number after a flag that takes a value as that value (`--port -1` is `--port=-1`,
 * which `parseArgs` alone calls ambiguous), and turns `parseArgs`' errors into one-line
 * {@linkcode UsageError}s (`unknown option '--nope'`, `option '--port' needs a value`).
 *
 * @param args The command-line arguments.
 * @param options The flags, as `parseArgs` takes them.
 * @param parse See {@linkcode ParseFlagsOptions}.
 * @returns The typed values and the positionals.
 * @throws {UsageError} For an unknown flag, a missing value, or an unexpected argument.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./flags.ts";
 * const { values } = parseFlags(["--", "--port", "-1"], { port: { type: "string" } });
 * console.log(values.port); // "-1"
 * ```
 */
export function parseFlags<const O extends FlagOptions>(
  args: readonly string[],
  options: O,
  parse: ParseFlagsOptions = {},
): Flags<O> {
  let flags: Flags<O>;
  try {
    flags = parseArgs({
      args: joinNegativeNumbers(args[0] === "--" ? args.slice(1) : [...args], options),
      options,
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new UsageError(inOurWords(error.message), { cause: error });
  }
  if (!parse.positionals && flags.positionals.length > 0) {
    throw new UsageError(`unexpected argument '${flags.positionals[0] ?? ""}'`);
  }
  return flags;
}

/** `-p -1` → `--period=-1` for each flag that takes a value; nothing changes after `--`. */
function joinNegativeNumbers(args: string[], options: FlagOptions): string[] {
  const valued = new Map<string, string>();
  for (const [long, option] of Object.entries(options)) {
    if (option.type !== "string") continue;
    valued.set(`--${long}`, long);
    if (long.length === 1) valued.set(`-${long}`, long); // parseArgs reads `-s` as `--s`
    if (option.short) valued.set(`-${option.short}`, long);
  }
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === "--") return [...joined, ...args.slice(i)];
    const long = valued.get(arg);
    const next = args[i + 1] ?? "";
    if (long !== undefined && /^-\.?\d/.test(next)) {
      joined.push(`--${long}=${next}`);
      i++;
    } else joined.push(arg);
  }
  return joined;
}

/** A `parseArgs` error's first line, in our words where we have them. */
function inOurWords(message: string): string {
  const unknown = /^Unknown option '([^']*)'/.exec(message);
  if (unknown) return `unknown option '${unknown[1]}'`;
  const ambiguous = /^Option '([^']*)' argument is ambiguous/.exec(message);
  if (ambiguous) return `option '${ambiguous[1]}' needs a value`;
  const missing = /^Option '(?:-\w, )?(-[^ ']*) <value>' argument missing/.exec(message);
  // A one-letter flag (`s: { type: "string" }`) is `-s` to the user, `--s` to parseArgs.
  if (missing) return `option '${(missing[1] ?? "").replace(/^--(\w)$/, "-$1")}' needs a value`;
  const extra = /^Option '(?:-\w, )?(-[^']*)' does not take an argument/.exec(message);
  if (extra) return `option '${extra[1]}' takes no value`;
  return message.split("\n")[0] ?? message;
}
