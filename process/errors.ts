/**
 * Errors thrown by `process/`: named classes that callers can catch.
 *
 * @module
 */

/**
 * A {@linkcode Proc} method was called in a state that does not allow it. Catch this to handle
 * both {@linkcode CantStartError} and {@linkcode NotRunningError}.
 *
 * @example
 * ```ts
 * import { Proc, ProcStateError } from "./mod.ts";
 * try {
 *   await new Proc("true").wait();
 * } catch (error) {
 *   console.log(error instanceof ProcStateError); // true
 * }
 * ```
 */
export class ProcStateError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was attempted and in which state.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProcStateError";
  }
}

/**
 * `start()` was called on a {@linkcode Proc} that was already started or has ended.
 *
 * @example
 * ```ts
 * import { CantStartError } from "./errors.ts";
 * const error = new CantStartError("Cannot start Proc 'true': it was already started");
 * console.log(error.name); // "CantStartError"
 * ```
 */
export class CantStartError extends ProcStateError {
  /**
   * Creates the error.
   *
   * @param message What was attempted and in which state.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CantStartError";
  }
}

/**
 * A {@linkcode Proc} that was never started was waited on, terminated or killed.
 *
 * @example
 * ```ts
 * import { NotRunningError } from "./errors.ts";
 * const error = new NotRunningError("Cannot wait for Proc 'true': it was never started");
 * console.log(error.name); // "NotRunningError"
 * ```
 */
export class NotRunningError extends ProcStateError {
  /**
   * Creates the error.
   *
   * @param message What was attempted and in which state.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NotRunningError";
  }
}

/**
 * The operating system could not start a {@linkcode Proc}'s executable (missing, not
 * executable, bad working directory...). The message names the executable; `cause` is the
 * original error.
 *
 * @example
 * ```ts
 * import { Proc, ProcSpawnError } from "./mod.ts";
 * try {
 *   new Proc("no-such-program-here").start();
 * } catch (error) {
 *   console.log(error instanceof ProcSpawnError); // true
 * }
 * ```
 */
export class ProcSpawnError extends Error {
  /**
   * Creates the error.
   *
   * @param message What could not be started, and why.
   * @param options Standard error options (`cause`: the original error).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProcSpawnError";
  }
}
