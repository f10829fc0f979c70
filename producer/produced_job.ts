/**
 * What a `Producer` tells about its jobs: each job's record, the events it dispatches
 * when a job changes, and the summary figures of the finished ones.
 *
 * @module
 */

import type { BusJobState, ErrorMessage, JobPayload } from "../bus/protocol.ts";

/**
 * How a job ended, from the producer's side: the bus's final states ({@linkcode isFinalBusState}),
 * plus `rejected` and `sent`.
 */
export type ProducerOutcome =
  /** Ran and exited 0. */
  | "succeeded"
  /** Ran and failed. */
  | "failed"
  /** Ran out of time. */
  | "timed_out"
  /** Cancelled. */
  | "cancelled"
  /** Evicted for good: its scheduler killed it and the bus will not run it again. */
  | "evicted"
  /** Handed to a seed scheduler (or broadcast): final for the bus, nothing more is known. */
  | "delivered"
  /** The bus refused it (bad input, queue full). */
  | "rejected"
  /** Protocol 1, or a seed bus: sent, and nothing more can be known. */
  | "sent";

/**
 * What the producer last knew of a job: `"pending"` (not answered yet), `"accepted"`, a state of
 * the bus's events, or the outcome.
 */
export type ProducedJobState = "pending" | "accepted" | BusJobState | ProducerOutcome;

/** What the producer knows about one of its jobs. */
export interface ProducedJob {
  /** `<name>-<n>`, n from 1. */
  readonly id: string;
  /** What was submitted (its priority is updated once a `setPriority` is acknowledged). */
  readonly payload: Readonly<JobPayload>;
  /** When it was submitted (producer clock, epoch ms). */
  readonly submittedAt: number;
  /** How many times it was sent (more than once after reconnects). */
  sends: number;
  /**
   * The latest news: `"pending"` (not answered yet), `"accepted"`, then the event states (also
   * learnt from a duplicate `accepted` after a reconnect).
   */
  state: ProducedJobState;
  /** When the bus answered `accepted` (or the first event arrived). */
  acceptedAt?: number;
  /**
   * Why the bus holds the job with nothing to run it, as it said on `accepted`:
   * `"no scheduler connected"`. Cleared once the job starts.
   */
  waiting?: string;
  /** When it first started (received time, producer clock). */
  firstStartedAt?: number;
  /** When it last started: it may start again after an eviction. */
  lastStartedAt?: number;
  /** The scheduler that last reported on it. */
  scheduler?: string;
  /** The final outcome, once known. */
  outcome?: ProducerOutcome;
  /** When the outcome was received. */
  finishedAt?: number;
  /** The reason the bus or scheduler gave, if any. */
  reason?: string;
  /** The scheduler's result object on a final state, if any. */
  result?: unknown;
}

/**
 * What changed in a {@linkcode ProducerJobEvent}: `sent`, `resent`, `accepted`, `duplicate`,
 * a state of the bus's events, or an outcome (`rejected` among them).
 */
export type JobChange =
  | "sent"
  | "resent"
  | "accepted"
  | "duplicate"
  | BusJobState
  | ProducerOutcome;

/** Dispatched (type `"job"`) when a job is sent or the bus reports on it. */
export class ProducerJobEvent extends Event {
  /** `sent`, `resent` (after a reconnect), `accepted`, `duplicate` (accepted before: the
   * job's `state` is what the bus says of it now; a final one is followed by the outcome),
   * `rejected`, or an event state (`queued`, `started`, ..., `succeeded`). An `accepted` job
   * with `job.waiting` set waits in the bus because no scheduler is connected. */
  readonly change: JobChange;
  /** The job, after the change. */
  readonly job: Readonly<ProducedJob>;
  /**
   * Creates the event.
   *
   * @param change See {@linkcode ProducerJobEvent.change}.
   * @param job See {@linkcode ProducerJobEvent.job}.
   */
  constructor(change: JobChange, job: Readonly<ProducedJob>) {
    super("job");
    this.change = change;
    this.job = job;
  }
}

/** Dispatched (type `"buserror"`) when the bus answers with `{"cmd":"error"}`. */
export class ProducerBusErrorEvent extends Event {
  /** The bus's message: `reason`, and `op` and `id` when known. */
  readonly message: ErrorMessage;
  /**
   * Creates the event.
   *
   * @param message See {@linkcode ProducerBusErrorEvent.message}.
   */
  constructor(message: ErrorMessage) {
    super("buserror");
    this.message = message;
  }
}

/** The events of a `Producer`, by type. */
export interface ProducerEventMap {
  /** A job was sent or the bus reported on it. */
  job: ProducerJobEvent;
  /** The bus answered `{"cmd":"error"}`. */
  buserror: ProducerBusErrorEvent;
}

/** Per-priority figures of a {@linkcode ProducerSummary}. */
export interface PrioritySummary {
  /** The priority. */
  priority: number;
  /** Jobs of this priority with a final outcome. */
  finished: number;
  /** Of those, how many were seen starting (the others' times are unknown: they never started,
   * or started while the producer was disconnected). */
  started: number;
  /** Mean time from submission to first start, ms (over the started ones; 0 if none). */
  meanWaitMs: number;
  /** Mean time from last start to the outcome, ms (over the started ones; 0 if none). */
  meanRunMs: number;
}

/** The figures of the finished jobs of a `Producer`. */
export interface ProducerSummary {
  /** Jobs submitted. */
  produced: number;
  /** Jobs with a final outcome. */
  finished: number;
  /** Count of finished jobs by outcome. */
  outcomes: Partial<Record<ProducerOutcome, number>>;
  /** By priority, most urgent first (only priorities with finished jobs). */
  byPriority: PrioritySummary[];
}
