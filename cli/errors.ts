/**
 * The error the CLIs' flag parsers throw for a bad command line.
 *
 * @module
 */

/**
 * A bad command line: {@linkcode runCli} prints its message on one line after the CLI's name,
 * then the usage, and exits 2.
 *
 * @example
 * ```ts
 * import { UsageError } from "./errors.ts";
 * const error = new UsageError("--port must be an integer 0..65535, got '-1'");
 * console.log(error.name); // "UsageError"
 * ```
 */
export class UsageError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong, in one line: the flag, what it takes, and what it got.
   * @param options `cause`, passed on to `Error`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}
