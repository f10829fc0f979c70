/**
 * Errors of the bus's store (`SqliteStore`) and of its data directory (`openDataDir`).
 *
 * @module
 */

/**
 * The store was asked something it cannot do safely: accept a job whose id belongs to a job
 * that has not ended, open a database whose schema is newer than this code knows, or use a
 * closed store.
 *
 * @example
 * ```ts
 * import { StoreError } from "./store_errors.ts";
 * console.log(new StoreError("Cannot accept job j: it exists").name); // StoreError
 * ```
 */
export class StoreError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was attempted and why it cannot be done.
   * @param options `cause`, when another error is behind it.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreError";
  }
}

/**
 * A data directory cannot be used: it cannot be created or read, or its database file is not a
 * SQLite database (nothing was changed).
 *
 * @example
 * ```ts
 * import { DataDirError } from "./store_errors.ts";
 * console.log(new DataDirError("data directory ./x is a file").name); // DataDirError
 * ```
 */
export class DataDirError extends Error {
  /**
   * Creates the error.
   *
   * @param message One line: which directory and what is wrong.
   * @param options `cause`, when another error is behind it.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DataDirError";
  }
}

/**
 * Another bus holds the data directory (its lock dies with its process).
 *
 * @example
 * ```ts
 * import { DataDirInUseError } from "./store_errors.ts";
 * const error = new DataDirInUseError("./sched-data", 1234);
 * console.log(error.message); // data directory ./sched-data is in use by another bus (pid 1234)
 * ```
 */
export class DataDirInUseError extends DataDirError {
  /** The other bus's process id, if its `bus.pid` file could be read. */
  readonly pid: number | undefined;

  /**
   * Creates the error.
   *
   * @param dir The data directory.
   * @param pid The other bus's pid, if known.
   * @param options `cause`, when another error is behind it.
   */
  constructor(dir: string, pid: number | undefined, options?: ErrorOptions) {
    super(
      `data directory ${dir} is in use by another bus` +
        (pid === undefined ? "" : ` (pid ${pid})`),
      options,
    );
    this.name = "DataDirInUseError";
    this.pid = pid;
  }
}
