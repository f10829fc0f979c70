/**
 * The producer: submits jobs to the bus through a reconnecting {@linkcode BusClient}, keeps
 * every unfinished job so that nothing is lost when the bus restarts, and follows the feedback
 * the bus sends about its jobs (protocol 2).
 *
 * @module
 */

import { type Clock, systemClock } from "../core/clock.ts";
import type { BackoffOptions } from "../bus/backoff.ts";
import { BusClient, type BusMessage, type BusMessageEvent } from "../bus/client.ts";
import { TypedEventTarget } from "../core/typed_event_target.ts";
import type { JobPayload } from "../bus/protocol.ts";
import { isPriority, MAX_PRIORITY, MIN_PRIORITY } from "../scheduler/job.ts";
import { JobOpError } from "./errors.ts";

/** How a job ended, from the producer's side. */
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
  /** Protocol 1: sent, and nothing more can be known. */
  | "sent";

/** The states that are always final; `evicted` is final when the bus says `final: true`. */
const FINAL_STATES: ReadonlySet<string> = new Set([
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
  "delivered",
]);

/** Whether an `event` or a duplicate `accepted` message gives the job's final state. */
function isFinal(message: BusMessage): boolean {
  return FINAL_STATES.has(message.state as string) ||
    (message.state === "evicted" && message.final === true);
}

/** What the producer knows about one of its jobs. */
export interface ProducedJob {
  /** `<name>-<n>`, n from 1. */
  readonly id: string;
  /** What was submitted. */
  readonly payload: Readonly<JobPayload>;
  /** When it was submitted (producer clock, epoch ms). */
  readonly submittedAt: number;
  /** How many times it was sent (more than once after reconnects). */
  sends: number;
  /**
   * The latest news: `"pending"` (not answered yet), `"accepted"`, then the event states (also
   * learnt from a duplicate `accepted` after a reconnect).
   */
  state: string;
  /** When the bus answered `accepted` (or the first event arrived). */
  acceptedAt?: number;
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

/** What changed in a {@linkcode ProducerJobEvent}. */
export type JobChange = "sent" | "resent" | "accepted" | "duplicate" | "rejected" | string;

/** Dispatched (type `"job"`) when a job is sent or the bus reports on it. */
export class ProducerJobEvent extends Event {
  /** `sent`, `resent` (after a reconnect), `accepted`, `duplicate` (accepted before: the
   * job's `state` is what the bus says of it now; a final one is followed by the outcome),
   * `rejected`, or an event state (`queued`, `started`, ..., `succeeded`). */
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
  readonly message: BusMessage;
  /**
   * Creates the event.
   *
   * @param message See {@linkcode ProducerBusErrorEvent.message}.
   */
  constructor(message: BusMessage) {
    super("buserror");
    this.message = message;
  }
}

/** The events of a {@linkcode Producer}, by type. */
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

/** The figures of the finished jobs of a {@linkcode Producer}. */
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

/** Options for {@linkcode Producer}. */
export interface ProducerOptions {
  /**
   * The producer's name: its owner identity on the bus and the prefix of its job ids.
   * @default {`producer-${Deno.pid}`}
   */
  name?: string;
  /**
   * `2`: ids, answers and feedback; `1`: speak exactly like the seed (no feedback, a job is
   * done once sent).
   * @default {2}
   */
  protocol?: 1 | 2;
  /**
   * The client's reconnect backoff.
   * @default {{ initialMs: 100, maxMs: 5000, factor: 2, jitter: "full" }}
   */
  backoff?: BackoffOptions;
  /**
   * Closes the producer when aborted.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Where time comes from (for job timings and the client's reconnect timers).
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Uniform numbers in `[0, 1)` for the reconnect jitter.
   * @default {Math.random}
   */
  random?: () => number;
}

interface Aggregate {
  finished: number;
  started: number;
  waitMs: number;
  runMs: number;
}

interface PendingOp {
  op: "cancel" | "set_priority";
  id: string;
  resolve: () => void;
  reject: (error: JobOpError) => void;
}

interface Waiter {
  done: () => boolean;
  resolve: () => void;
}

/**
 * Submits jobs to the bus and follows them. Every job without an outcome is kept and sent again
 * after each reconnect: the bus's ids are idempotent, so a job it already has is answered
 * `duplicate` with its state now (the outcome, if it finished while the producer was away: so
 * {@linkcode Producer.onSettled} never waits for an event it missed), and one it lost (a
 * restarted bus) is queued again. Finished jobs are forgotten, except in the
 * {@linkcode Producer.summary} figures. {@linkcode Producer.cancel} and
 * {@linkcode Producer.setPriority} return promises settled by the bus's answer.
 *
 * Timings use the producer's clock at the time each answer is received; a job whose start
 * was not seen has no wait or run time.
 *
 * @example
 * ```ts
 * import { Producer } from "./producer.ts";
 * // Port 9: no bus there (an example must never submit to a bus a developer has running).
 * await using producer = new Producer("ws://127.0.0.1:9", { name: "p1" });
 * producer.addEventListener("job", (event) => console.log(event.change, event.job.id));
 * producer.start();
 * const job = producer.submit({ priority: 3, runtime: 5 });
 * console.log(job.id); // "p1-1"; held until the bus is reachable
 * ```
 */
export class Producer extends TypedEventTarget<ProducerEventMap> implements AsyncDisposable {
  #client: BusClient;
  #name: string;
  #protocol: 1 | 2;
  #clock: Clock;
  #jobs = new Map<string, ProducedJob>(); // unfinished, in submission order
  #unanswered = 0; // unfinished jobs without `accepted` (protocol 1: not yet sent)
  #produced = 0;
  #ready = false;
  #closed = false;
  #outcomes: Partial<Record<ProducerOutcome, number>> = {};
  #byPriority = new Map<number, Aggregate>();
  #waiters = new Set<Waiter>();
  #ops: PendingOp[] = []; // cancel / set_priority sent and not answered, in order
  #signal: AbortSignal | undefined;
  #onAbort = (): void => void this.close();

  /**
   * Creates a producer; it connects on {@linkcode Producer.start}.
   *
   * @param url The bus's WebSocket URL.
   * @param options See {@linkcode ProducerOptions}.
   * @throws {TypeError} If `url` is not a WebSocket URL or `name` is not 1..100 characters.
   * @throws {RangeError} If `protocol` is neither 1 nor 2, or the backoff is invalid.
   */
  constructor(url: string, options: ProducerOptions = {}) {
    super();
    this.#name = options.name ?? `producer-${Deno.pid}`;
    if (typeof this.#name !== "string" || this.#name.length < 1 || this.#name.length > 100) {
      throw new TypeError(
        `Cannot create Producer: 'name' must be 1..100 characters, got ${this.#name}`,
      );
    }
    this.#protocol = options.protocol ?? 2;
    if (this.#protocol !== 1 && this.#protocol !== 2) {
      throw new RangeError(
        `Cannot create Producer: 'protocol' must be 1 or 2, got ${options.protocol}`,
      );
    }
    this.#clock = options.clock ?? systemClock;
    this.#client = new BusClient(url, {
      register: () =>
        this.#protocol === 2
          ? { cmd: "register", type: "producer", protocol: 2, name: this.#name }
          : { cmd: "register", type: "producer" },
      backoff: options.backoff,
      signal: options.signal,
      clock: this.#clock,
      random: options.random,
    });
    this.#client.addEventListener(this.#protocol === 2 ? "registered" : "open", () => {
      this.#ready = true;
      this.#flush();
    });
    this.#client.addEventListener("close", () => {
      this.#ready = false;
      this.#failOps("connection lost before the answer (it may have been applied)");
    });
    this.#client.addEventListener("message", (event) => this.#onMessage(event));
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** The connection, for its `open`, `close`, `reconnecting` and `error` events. */
  get client(): BusClient {
    return this.#client;
  }

  /** The producer's name (its job ids' prefix). */
  get name(): string {
    return this.#name;
  }

  /** Jobs submitted so far. */
  get produced(): number {
    return this.#produced;
  }

  /** Jobs submitted and not finished (no outcome yet). */
  get unfinished(): number {
    return this.#jobs.size;
  }

  /** Unfinished jobs the bus has not answered yet (protocol 1: not yet sent). */
  get unanswered(): number {
    return this.#unanswered;
  }

  /** The figures so far; see {@linkcode ProducerSummary}. */
  get summary(): ProducerSummary {
    const byPriority = [...this.#byPriority].sort(([a], [b]) => a - b).map(
      ([priority, a]): PrioritySummary => ({
        priority,
        finished: a.finished,
        started: a.started,
        meanWaitMs: a.started ? a.waitMs / a.started : 0,
        meanRunMs: a.started ? a.runMs / a.started : 0,
      }),
    );
    const finished = this.#produced - this.#jobs.size;
    return { produced: this.#produced, finished, outcomes: { ...this.#outcomes }, byPriority };
  }

  /** Connects to the bus (and keeps reconnecting). */
  start(): void {
    this.#client.start();
  }

  /**
   * Submits a job: it is sent now if the bus is connected, else after the next (re)connect.
   *
   * @param payload The job; see {@linkcode JobPayload}.
   * @returns The job's record (its `sends` is 0 if it is held until the bus is reachable).
   * @throws {TypeError} If the producer is closed.
   */
  submit(payload: JobPayload): Readonly<ProducedJob> {
    if (this.#closed) throw new TypeError("Cannot submit a job: the Producer is closed");
    const job: ProducedJob = {
      id: `${this.#name}-${++this.#produced}`,
      payload: { ...payload },
      submittedAt: this.#clock.now(),
      sends: 0,
      state: "pending",
    };
    this.#jobs.set(job.id, job);
    this.#unanswered++;
    if (this.#ready) this.#send(job);
    return job;
  }

  /**
   * Resolves once every job submitted so far is answered by the bus (protocol 1: sent), or the
   * producer is closed.
   *
   * @returns A promise that resolves then.
   */
  onAnswered(): Promise<void> {
    return this.#when(() => this.#unanswered === 0);
  }

  /**
   * Resolves once every job submitted so far has an outcome, or the producer is closed.
   *
   * @returns A promise that resolves then.
   */
  onSettled(): Promise<void> {
    return this.#when(() => this.#jobs.size === 0);
  }

  /**
   * Cancels one of this producer's jobs, waiting in the bus or running at a scheduler (protocol
   * 2). The job's final `cancelled` outcome arrives as an event, like any other.
   *
   * @param id The job id.
   * @returns Resolves when the bus acknowledges the request.
   * @throws {TypeError} If the producer speaks protocol 1 or is closed.
   * @throws {JobOpError} (the promise rejects) If the bus refuses (unknown job, not yours,
   * already finished) or does not answer (not connected, connection lost, producer closed).
   * @example
   * ```ts
   * import { Producer } from "./producer.ts";
   * import { JobOpError } from "./errors.ts";
   * await using producer = new Producer("ws://127.0.0.1:9", { name: "p" });
   * const job = producer.submit({ priority: 9, runtime: 60 });
   * await producer.cancel(job.id).catch((e: JobOpError) => console.log(e.reason));
   * // "not connected to the bus"
   * ```
   */
  cancel(id: string): Promise<void> {
    return this.#op({ cmd: "cancel", id });
  }

  /**
   * Changes the priority of one of this producer's jobs while it waits in the bus's queue
   * (protocol 2). Once acknowledged, a re-send after a reconnect carries the new priority.
   *
   * @param id The job id.
   * @param priority The new priority, an integer 0..10 (0 most urgent).
   * @returns Resolves when the bus acknowledges the request.
   * @throws {RangeError} If `priority` is not an integer 0..10.
   * @throws {TypeError} If the producer speaks protocol 1 or is closed.
   * @throws {JobOpError} (the promise rejects) If the bus refuses (unknown job, not yours, not
   * waiting in the bus) or does not answer (not connected, connection lost, producer closed).
   * @example
   * ```ts
   * import { Producer } from "./producer.ts";
   * await using producer = new Producer("ws://127.0.0.1:9", { name: "p" });
   * const job = producer.submit({ priority: 9, runtime: 60 });
   * await producer.setPriority(job.id, 0).catch(() => {}); // rejects: not connected
   * ```
   */
  setPriority(id: string, priority: number): Promise<void> {
    if (!isPriority(priority)) {
      throw new RangeError(
        `Cannot set priority: 'priority' must be an integer ${MIN_PRIORITY}..${MAX_PRIORITY}, ` +
          `got ${priority}`,
      );
    }
    return this.#op({ cmd: "set_priority", id, priority });
  }

  /**
   * Closes the connection; pending `onAnswered` / `onSettled` promises resolve, pending
   * `cancel` / `setPriority` promises reject. Idempotent.
   *
   * @returns A promise that resolves once the connection is closed.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#ready = false;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#check();
    this.#failOps("producer closed");
    return this.#client.close();
  }

  /** Same as {@linkcode Producer.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #op(
    message: { cmd: "cancel"; id: string } | { cmd: "set_priority"; id: string; priority: number },
  ): Promise<void> {
    const op = message.cmd;
    if (this.#closed) throw new TypeError(`Cannot ${op}: the Producer is closed`);
    if (this.#protocol !== 2) throw new TypeError(`Cannot ${op}: the Producer speaks protocol 1`);
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    if (!this.#ready || !this.#client.send(message)) {
      reject(new JobOpError(op, message.id, "not connected to the bus"));
      return promise;
    }
    const applied = (): void => {
      const job = this.#jobs.get(message.id);
      if (job && message.cmd === "set_priority") {
        (job.payload as JobPayload).priority = message.priority;
      }
      resolve();
    };
    this.#ops.push({ op, id: message.id, resolve: applied, reject });
    return promise;
  }

  /** Settles the oldest pending op this `ack` / `error` answers; false if none. */
  #answerOp(message: BusMessage): boolean {
    const i = this.#ops.findIndex((op) => op.op === message.op && op.id === message.id);
    if (i < 0) return false;
    const [op] = this.#ops.splice(i, 1);
    if (message.cmd === "ack") op.resolve();
    else op.reject(new JobOpError(op.op, op.id, String(message.reason)));
    return true;
  }

  #failOps(reason: string): void {
    for (const op of this.#ops.splice(0)) op.reject(new JobOpError(op.op, op.id, reason));
  }

  #flush(): void {
    for (const job of this.#jobs.values()) {
      if (!this.#ready) return;
      this.#send(job);
    }
  }

  #send(job: ProducedJob): void {
    const message = this.#protocol === 2
      ? { cmd: "job_request", id: job.id, payload: job.payload }
      : { cmd: "job_request", payload: job.payload };
    if (!this.#client.send(message)) return;
    job.sends++;
    this.#emit(job.sends === 1 ? "sent" : "resent", job);
    if (this.#protocol === 1) this.#finish(job, "sent");
  }

  #onMessage({ message }: BusMessageEvent): void {
    if (message.cmd === "ack" || message.cmd === "error") {
      if (!this.#answerOp(message) && message.cmd === "error") {
        this.dispatchEvent(new ProducerBusErrorEvent(message));
      }
      return;
    }
    const job = typeof message.id === "string" ? this.#jobs.get(message.id) : undefined;
    if (!job) return; // not ours, or already finished
    const now = this.#clock.now();
    switch (message.cmd) {
      case "accepted": {
        this.#accept(job, now);
        if (message.duplicate !== true) {
          this.#emit("accepted", job);
          break;
        }
        // The bus had it: what it says of the job now may be news (events missed while away).
        if (typeof message.state === "string") this.#learn(job, message);
        this.#emit("duplicate", job);
        if (isFinal(message)) this.#finish(job, message.state as ProducerOutcome);
        break;
      }
      case "rejected":
        job.reason = stringOrUndefined(message.reason);
        this.#finish(job, "rejected");
        break;
      case "event": {
        if (typeof message.state !== "string") return;
        this.#accept(job, now);
        this.#learn(job, message);
        if (message.state === "started") {
          job.firstStartedAt ??= now;
          job.lastStartedAt = now;
        }
        if (isFinal(message)) this.#finish(job, message.state as ProducerOutcome);
        else this.#emit(message.state, job);
        break;
      }
    }
  }

  /** Takes the state, scheduler, reason and result an `event` or duplicate `accepted` gives. */
  #learn(job: ProducedJob, message: BusMessage): void {
    job.state = message.state as string;
    job.scheduler = stringOrUndefined(message.scheduler) ?? job.scheduler;
    job.reason = stringOrUndefined(message.reason);
    if (isFinal(message)) job.result = message.result;
  }

  #accept(job: ProducedJob, now: number): void {
    if (job.acceptedAt !== undefined) return;
    job.acceptedAt = now;
    if (job.state === "pending") job.state = "accepted";
    this.#unanswered--;
  }

  #finish(job: ProducedJob, outcome: ProducerOutcome): void {
    if (job.acceptedAt === undefined) this.#unanswered--;
    job.outcome = outcome;
    job.state = outcome;
    job.finishedAt = this.#clock.now();
    this.#jobs.delete(job.id);
    this.#outcomes[outcome] = (this.#outcomes[outcome] ?? 0) + 1;
    const priority = job.payload.priority;
    const aggregate = this.#byPriority.get(priority) ??
      { finished: 0, started: 0, waitMs: 0, runMs: 0 };
    aggregate.finished++;
    if (job.firstStartedAt !== undefined && job.lastStartedAt !== undefined) {
      aggregate.started++;
      aggregate.waitMs += job.firstStartedAt - job.submittedAt;
      aggregate.runMs += job.finishedAt - job.lastStartedAt;
    }
    this.#byPriority.set(priority, aggregate);
    if (this.#protocol === 2) this.#emit(outcome, job);
    this.#check();
  }

  #emit(change: JobChange, job: ProducedJob): void {
    this.dispatchEvent(new ProducerJobEvent(change, job));
    this.#check();
  }

  #when(done: () => boolean): Promise<void> {
    if (this.#closed || done()) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.add({ done, resolve });
    return promise;
  }

  #check(): void {
    for (const waiter of this.#waiters) {
      if (this.#closed || waiter.done()) {
        this.#waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
