/**
 * Errors of the scheduler layer that callers may want to catch.
 *
 * @module
 */

/**
 * Thrown by `Runner.submit` once the runner is closed (or closing).
 *
 * @example
 * ```ts
 * import { RunnerClosedError } from "./errors.ts";
 * const error = new RunnerClosedError("job-1");
 * console.log(error.name); // "RunnerClosedError"
 * ```
 */
export class RunnerClosedError extends Error {
  /**
   * Creates the error for a refused job.
   *
   * @param jobId The id of the job that was refused, if known.
   * @param options Standard error options (`cause`).
   */
  constructor(jobId?: string, options?: ErrorOptions) {
    super(
      `Cannot submit job${jobId === undefined ? "" : ` '${jobId}'`}: the runner is closed`,
      options,
    );
    this.name = "RunnerClosedError";
  }
}

/**
 * Thrown by `Runner.submit` when a job with the same id is still unfinished in that runner.
 *
 * @example
 * ```ts
 * import { DuplicateJobIdError } from "./errors.ts";
 * const error = new DuplicateJobIdError("job-1");
 * console.log(error.jobId); // "job-1"
 * ```
 */
export class DuplicateJobIdError extends Error {
  /** The id that is already in use. */
  readonly jobId: string;

  /**
   * Creates the error for a duplicate id.
   *
   * @param jobId The id that is already in use.
   * @param options Standard error options (`cause`).
   */
  constructor(jobId: string, options?: ErrorOptions) {
    super(`Cannot submit job '${jobId}': a job with that id is still unfinished`, options);
    this.name = "DuplicateJobIdError";
    this.jobId = jobId;
  }
}
