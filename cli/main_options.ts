/**
 * What a CLI's `main(args, options)` lets a test inject, and the same resolved with defaults.
 *
 * @module
 */

// deno-lint-ignore-file no-console -- the defaults of a CLI's output are the console
import { type Clock, systemClock } from "../core/clock.ts";
import { formatLog, type LogFields, type LogFormat } from "./log_format.ts";

/** Injection points of every CLI's `main(args, options)`; the command line uses the defaults. */
export interface MainOptions {
  /**
   * Stops the CLI when aborted, as SIGINT / SIGTERM do.
   * @default {undefined}
   */
  signal?: AbortSignal | undefined;
  /**
   * Where output lines go (one call per line).
   * @default {console.log}
   */
  stdout?: ((line: string) => void) | undefined;
  /**
   * Where errors, warnings and the usage after a bad flag go.
   * @default {console.error}
   */
  stderr?: ((line: string) => void) | undefined;
  /**
   * Where time comes from (the log stamps, and the timers of CLIs that wait).
   * @default {systemClock}
   */
  clock?: Clock | undefined;
  /**
   * The form of `log` / `warn` lines (`--log-format`, set by `runCli` from the flag).
   * @default {"text"}
   */
  logFormat?: LogFormat | undefined;
}

/** {@linkcode MainOptions} with the defaults filled in, plus stamped log helpers. */
export interface CliIo {
  /** Stops the CLI when aborted (see {@linkcode MainOptions.signal}; one that never aborts if
   * none was given). */
  signal: AbortSignal;
  /** Prints a line on stdout as is. */
  out: (line: string) => void;
  /** Prints a line on stderr as is. */
  err: (line: string) => void;
  /** The clock. */
  clock: Clock;
  /** Prints `HH:MM:SS.mmm line` on stdout (with `--log-format json`: a JSON object). */
  log: (line: string, fields?: LogFields) => void;
  /** Prints `HH:MM:SS.mmm warning: line` on stderr (with `--log-format json`: a JSON object). */
  warn: (line: string, fields?: LogFields) => void;
}

/**
 * Fills in the defaults of {@linkcode MainOptions}.
 *
 * @param options What the caller injected.
 * @returns The streams, the clock, the signal, and `log` / `warn` that stamp each line.
 *
 * @example
 * ```ts
 * import { cliIo } from "./main_options.ts";
 * const lines: string[] = [];
 * cliIo({ stdout: (line) => lines.push(line) }).log("hello");
 * console.log(/^\d\d:\d\d:\d\d\.\d{3} hello$/.test(lines[0] ?? "")); // true
 * ```
 */
export function cliIo(options: MainOptions = {}): CliIo {
  const out = options.stdout ?? ((line: string) => console.log(line));
  const err = options.stderr ?? ((line: string) => console.error(line));
  const clock = options.clock ?? systemClock;
  const format = options.logFormat ?? "text";
  return {
    signal: options.signal ?? new AbortController().signal,
    out,
    err,
    clock,
    log: (message, fields) =>
      out(formatLog(format, { time: clock.now(), level: "info", message, fields })),
    warn: (message, fields) =>
      err(formatLog(format, { time: clock.now(), level: "warning", message, fields })),
  };
}
