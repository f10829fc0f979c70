/**
 * Errors the bus's callers may catch.
 *
 * @module
 */

/**
 * A bus piece was used in a state that does not allow it: a `BusServer` started twice or after
 * `close()`, a scheduler connection added twice to a `Dispatcher`.
 *
 * @example
 * ```ts
 * import { BusStateError } from "./errors.ts";
 * const error = new BusStateError("Cannot start BusServer: already started");
 * console.log(error.name); // BusStateError
 * ```
 */
export class BusStateError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was attempted and why it cannot be done.
   * @param options `cause`, when another error is behind it.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BusStateError";
  }
}
