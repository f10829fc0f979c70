/**
 * Errors the producer's callers may catch.
 *
 * @module
 */

/** An operation on a job that the bus may refuse. */
export type JobOp = "cancel" | "set_priority" | "list" | "show";

/**
 * A `cancel` or `set_priority` of a `Producer` did not succeed: the bus refused it
 * (unknown job, not yours, already finished, not waiting), or there was no answer (not
 * connected, connection lost before the answer, producer closed).
 *
 * @example
 * ```ts
 * import { JobOpError } from "./errors.ts";
 * const error = new JobOpError("cancel", "p-1", "job already succeeded");
 * console.log(error.name, error.message); // JobOpError cancel p-1: job already succeeded
 * ```
 */
export class JobOpError extends Error {
  /** The operation: `"cancel"` or `"set_priority"` (a `JobClient`'s also `"list"`, `"show"`). */
  readonly op: JobOp;
  /** The job id. */
  readonly id: string;
  /** Why, as the bus (or the producer) put it. */
  readonly reason: string;

  /**
   * Creates the error.
   *
   * @param op The operation.
   * @param id The job id.
   * @param reason Why it failed.
   * @param options `cause`, when another error is behind it.
   */
  constructor(
    op: JobOp,
    id: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`${op} ${id}: ${reason}`, options);
    this.name = "JobOpError";
    this.op = op;
    this.id = id;
    this.reason = reason;
  }
}

/**
 * A `Producer` was asked for something its state does not allow: a job submitted, or a
 * `cancel` / `set_priority` asked, after `close()`; a `cancel` / `set_priority` while it speaks
 * protocol 1 or is connected to a seed bus (neither has them).
 *
 * @example
 * ```ts
 * import { ProducerStateError } from "./errors.ts";
 * const error = new ProducerStateError("Cannot submit a job: the Producer is closed");
 * console.log(error.name); // ProducerStateError
 * ```
 */
export class ProducerStateError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was attempted and why it cannot be done.
   * @param options `cause`, when another error is behind it.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProducerStateError";
  }
}

/**
 * The bus refused a `JobClient`'s connection after it had been serving it (its token was
 * revoked, or the bus stopped taking it): every unanswered request and wait of that client
 * rejects with this, rather than retry forever.
 *
 * @example
 * ```ts
 * import { JobClientRefusedError } from "./errors.ts";
 * const error = new JobClientRefusedError("refused the upgrade: HTTP/1.1 401 Unauthorized");
 * console.log(error.name); // JobClientRefusedError
 * ```
 */
export class JobClientRefusedError extends Error {
  /**
   * Creates the error.
   *
   * @param message What the bus answered.
   */
  constructor(message: string) {
    super(message);
    this.name = "JobClientRefusedError";
  }
}
