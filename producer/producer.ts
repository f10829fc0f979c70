/**
 * The producer: submits jobs to the bus through a reconnecting {@linkcode BusClient}, keeps
 * every unfinished job so that nothing is lost when the bus restarts, and follows the feedback
 * the bus sends about its jobs (protocol 2).
 *
 * @module
 */

import { type Clock, systemClock } from "../core/clock.ts";
import type { BackoffOptions } from "../bus/backoff.ts";
import { BusClient, BusMessageEvent } from "../bus/client.ts";
import { EventCursor } from "../bus/event_cursor.ts";
import { TypedEventTarget } from "../core/typed_event_target.ts";
import {
  type AcceptedMessage,
  type AckMessage,
  type BusJobState,
  type ErrorMessage,
  isFinalBusState,
  type JobEventMessage,
  type JobPayload,
  PROTOCOL_VERSION,
} from "../bus/protocol.ts";
import { isPriority, MAX_PRIORITY, MIN_PRIORITY } from "../scheduler/job.ts";
import { JobOpError, ProducerStateError } from "./errors.ts";
import {
  type JobChange,
  type PrioritySummary,
  type ProducedJob,
  ProducerBusErrorEvent,
  type ProducerEventMap,
  ProducerJobEvent,
  type ProducerOutcome,
  type ProducerSummary,
} from "./produced_job.ts";

export * from "./produced_job.ts";

/** Whether an `event` or a duplicate `accepted` message gives the job's final state. */
function isFinal(message: { state?: BusJobState; final?: true }): boolean {
  return message.state !== undefined && isFinalBusState(message.state, message.final === true);
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
  /**
   * How long to wait for the bus's `registered` before taking it for the seed's bus (see
   * `BusClientOptions.seedBusAfterMs`); 0 never does.
   * @default {2000}
   */
  seedBusAfterMs?: number;
  /**
   * The bus token, sent as `Authorization: Bearer …` on every connection (a bus with `--auth`).
   * @default {undefined}
   */
  token?: string | undefined;
  /**
   * PEM certificates of the CAs trusted for a `wss:` bus besides the system's (a private CA).
   * @default {undefined}
   */
  caCerts?: readonly string[] | undefined;
}

/** The producer's own record of a job: {@linkcode ProducedJob} with a replaceable payload. */
type JobRecord = Omit<ProducedJob, "payload"> & { payload: Readonly<JobPayload> };

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
 * On protocol 2 it also keeps its resume point in the bus's events (the greatest event `seq`
 * seen) and registers again with `after` it, so a bus that keeps its events replays the ones
 * missed; a replayed event already seen is ignored. On `resync` (the bus could not replay them
 * all) it re-sends its unfinished jobs, whose `duplicate` answers tell their states.
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
  #jobs = new Map<string, JobRecord>(); // unfinished, in submission order
  #unanswered = 0; // unfinished jobs without `accepted` (protocol 1: not yet sent)
  #produced = 0;
  #ready = false;
  #seedBus = false; // connected to a seed bus: seed job requests, jobs done once sent
  #closed = false;
  #outcomes: Partial<Record<ProducerOutcome, number>> = {};
  #byPriority = new Map<number, Aggregate>();
  #waiters = new Set<Waiter>();
  #ops: PendingOp[] = []; // cancel / set_priority sent and not answered, in order
  #cursor = new EventCursor(); // the resume point in the bus's events (protocol 2)
  #inFlight = new Set<string>(); // ids whose job_request on this connection awaits its answer
  #signal: AbortSignal | undefined;
  #onAbort = (): void => void this.close();

  /**
   * Creates a producer; it connects on {@linkcode Producer.start}.
   *
   * @param url The bus's WebSocket URL, or several (buses of one cluster: see `BusClient`).
   * @param options See {@linkcode ProducerOptions}.
   * @throws {TypeError} If `url` is not a WebSocket URL or `name` is not 1..100 characters.
   * @throws {RangeError} If `protocol` is neither 1 nor 2, or the backoff is invalid.
   */
  constructor(url: string | readonly string[], options: ProducerOptions = {}) {
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
          ? {
            cmd: "register",
            type: "producer",
            protocol: PROTOCOL_VERSION,
            name: this.#name,
            ...this.#cursor.register(),
          }
          : { cmd: "register", type: "producer" },
      backoff: options.backoff,
      signal: options.signal,
      clock: this.#clock,
      random: options.random,
      seedBusAfterMs: options.seedBusAfterMs,
      token: options.token,
      caCerts: options.caCerts,
    });
    this.#client.addEventListener(this.#protocol === 2 ? "registered" : "open", (event) => {
      if (event instanceof BusMessageEvent) this.#cursor.registered(event.message.seq);
      this.#seedBus = false;
      this.#ready = true;
      this.#flush();
    });
    this.#client.addEventListener("seedbus", () => {
      this.#seedBus = true;
      this.#ready = true;
      this.#flush();
    });
    this.#client.addEventListener("close", () => {
      this.#ready = false;
      this.#inFlight.clear();
      this.#failOps("connection lost before the answer (it may have been applied)");
    });
    this.#client.addEventListener("message", (event) => this.#onMessage(event));
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /**
   * The connection, for its `open`, `close`, `reconnecting`, `error` and `seedbus` events. On
   * `seedbus` (the bus is the seed's, which never answers `registered`) a protocol 2 producer
   * speaks protocol 1 on that connection: jobs go out as the seed's job requests and are done
   * once sent (outcome `sent`); `cancel` and `setPriority` reject.
   */
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
   * @throws {ProducerStateError} If the producer is closed.
   */
  submit(payload: JobPayload): Readonly<ProducedJob> {
    if (this.#closed) throw new ProducerStateError("Cannot submit a job: the Producer is closed");
    const job: JobRecord = {
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
   * 2). The job's final `cancelled` outcome arrives as an event, like any other. It throws only
   * for a bad argument; everything else, the producer's state included, rejects the promise.
   *
   * @param id The job id.
   * @returns Resolves when the bus acknowledges the request.
   * @throws {TypeError} If `id` is not a string.
   * @throws {ProducerStateError} (the promise rejects) If the producer is closed, speaks
   * protocol 1 or is connected to a seed bus.
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
   * (protocol 2). Once acknowledged, a re-send after a reconnect carries the new priority. It
   * throws only for bad arguments; everything else rejects the promise, as with `cancel`.
   *
   * @param id The job id.
   * @param priority The new priority, an integer 0..10 (0 most urgent).
   * @returns Resolves when the bus acknowledges the request.
   * @throws {RangeError} If `priority` is not an integer 0..10.
   * @throws {TypeError} If `id` is not a string.
   * @throws {ProducerStateError} (the promise rejects) If the producer is closed, speaks
   * protocol 1 or is connected to a seed bus.
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
    if (typeof message.id !== "string") {
      throw new TypeError(`Cannot ${op}: 'id' must be a string, got ${message.id}`);
    }
    const refused = this.#closed
      ? "the Producer is closed"
      : this.#protocol !== 2
      ? "the Producer speaks protocol 1"
      : this.#seedBus
      ? "the bus is the seed's, which has no " + op
      : undefined;
    if (refused) return Promise.reject(new ProducerStateError(`Cannot ${op}: ${refused}`));
    if (!this.#ready || !this.#client.send(message)) {
      return Promise.reject(new JobOpError(op, message.id, "not connected to the bus"));
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const applied = (): void => {
      const job = this.#jobs.get(message.id);
      if (job && message.cmd === "set_priority") {
        job.payload = { ...job.payload, priority: message.priority };
      }
      resolve();
    };
    this.#ops.push({ op, id: message.id, resolve: applied, reject });
    return promise;
  }

  /** Settles the oldest pending op this `ack` / `error` answers; false if none. */
  #answerOp(message: AckMessage | ErrorMessage): boolean {
    const i = this.#ops.findIndex((op) => op.op === message.op && op.id === message.id);
    const op = this.#ops[i];
    if (op === undefined) return false;
    this.#ops.splice(i, 1);
    if (message.cmd === "ack") op.resolve();
    else op.reject(new JobOpError(op.op, op.id, message.reason));
    return true;
  }

  #failOps(reason: string): void {
    for (const op of this.#ops.splice(0)) op.reject(new JobOpError(op.op, op.id, reason));
  }

  /** Sends every unfinished job (`resync`: all but those whose answer is on its way). */
  #flush(resync = false): void {
    for (const job of this.#jobs.values()) {
      if (!this.#ready) return;
      if (!resync || !this.#inFlight.has(job.id)) this.#send(job);
    }
  }

  #send(job: JobRecord): void {
    const seed = this.#protocol === 1 || this.#seedBus;
    const message = seed
      ? { cmd: "job_request", payload: job.payload }
      : { cmd: "job_request", id: job.id, payload: job.payload };
    if (!this.#client.send(message)) return;
    if (!seed) this.#inFlight.add(job.id);
    job.sends++;
    this.#emit(job.sends === 1 ? "sent" : "resent", job);
    if (seed) this.#finish(job, "sent");
  }

  /** Takes the bus's answers and events; a message that does not validate is ignored. */
  #onMessage({ parsed }: BusMessageEvent): void {
    if (!parsed.ok) return;
    const message = parsed.message;
    if (message.cmd === "ack" || message.cmd === "error") {
      if (!this.#answerOp(message) && message.cmd === "error") {
        this.dispatchEvent(new ProducerBusErrorEvent(message));
      }
      return;
    }
    if (message.cmd === "resync") {
      // The bus cannot replay all we missed: it answers each job's re-sent request with its state.
      this.#cursor.resync(message.seq);
      return this.#flush(true);
    }
    if (message.cmd === "event" && !this.#cursor.take(message.seq)) return; // replayed, had it
    if (message.cmd !== "accepted" && message.cmd !== "rejected" && message.cmd !== "event") return;
    if (message.cmd !== "event" && message.id !== undefined) this.#inFlight.delete(message.id);
    const job = message.id === undefined ? undefined : this.#jobs.get(message.id);
    if (!job) return; // not ours, or already finished
    switch (message.cmd) {
      case "accepted":
        return this.#onAccepted(job, message);
      case "rejected":
        job.reason = message.reason;
        return this.#finish(job, "rejected");
      case "event":
        return this.#onEvent(job, message);
    }
  }

  #onAccepted(job: JobRecord, message: AcceptedMessage): void {
    this.#accept(job, this.#clock.now());
    if (message.duplicate !== true) {
      if (message.waiting !== undefined) job.waiting = message.waiting;
      this.#emit("accepted", job);
      return;
    }
    // The bus had it: what it says of the job now may be news (events missed while away).
    if (message.state !== undefined) this.#learn(job, message, message.state);
    this.#emit("duplicate", job);
    if (isFinal(message)) this.#finish(job, message.state as ProducerOutcome);
  }

  #onEvent(job: JobRecord, message: JobEventMessage): void {
    const now = this.#clock.now();
    this.#accept(job, now);
    this.#learn(job, message, message.state);
    if (message.state === "started") {
      job.firstStartedAt ??= now;
      job.lastStartedAt = now;
      delete job.waiting;
    }
    if (isFinal(message)) this.#finish(job, message.state as ProducerOutcome);
    else this.#emit(message.state, job);
  }

  /** Takes the state, scheduler, reason and result an `event` or duplicate `accepted` gives. */
  #learn(job: JobRecord, message: AcceptedMessage | JobEventMessage, state: BusJobState): void {
    job.state = state;
    if (message.scheduler !== undefined) job.scheduler = message.scheduler;
    if (message.reason === undefined) delete job.reason;
    else job.reason = message.reason;
    if (isFinal(message)) job.result = message.result;
  }

  #accept(job: JobRecord, now: number): void {
    if (job.acceptedAt !== undefined) return;
    job.acceptedAt = now;
    if (job.state === "pending") job.state = "accepted";
    this.#unanswered--;
  }

  #finish(job: JobRecord, outcome: ProducerOutcome): void {
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
    if (outcome !== "sent") this.#emit(outcome, job); // "sent" was the last change

    this.#check();
  }

  #emit(change: JobChange, job: JobRecord): void {
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
