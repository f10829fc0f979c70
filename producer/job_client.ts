/**
 * A small client of the bus for one owner: submit command jobs under ids of its own, wait for
 * their end (result included), list and show jobs, cancel them and change their priority, and
 * receive the live output of jobs submitted with `follow: true`. It is the library piece under
 * `deno task submit` and `deno task jobs`.
 *
 * Waiting survives reconnects and lost events: after each reconnect the client re-sends the
 * `job_request` of every job it waits for under the same id (the bus's `duplicate` answer tells
 * the job's state, with its result once final) or asks `show` for jobs it did not submit; and a
 * job it has heard nothing of for `recheckMs` is asked for again with `show`. It also keeps its
 * resume point in the bus's events (the greatest `seq` seen) and registers again with `after`
 * it, so a bus that keeps its events replays the ones missed (one seen already is ignored); on
 * `resync` it asks again for every job it waits for, as after a reconnect.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import { TypedEventTarget } from "../core/typed_event_target.ts";
import type { BackoffOptions } from "../bus/backoff.ts";
import { BusClient, type BusMessage, type BusMessageEvent } from "../bus/client.ts";
import { EventCursor } from "../bus/event_cursor.ts";
import {
  type BusJobState,
  isFinalBusState,
  isJsonObject,
  type JobDetails,
  type JobList,
  type JobPayload,
  type JobSummary,
  PROTOCOL_VERSION,
} from "../bus/protocol.ts";
import type { JobResult } from "../scheduler/job_result.ts";
import { JobClientRefusedError, type JobOp, JobOpError, ProducerStateError } from "./errors.ts";

/** Options for {@linkcode JobClient}. */
export interface JobClientOptions {
  /** The owner: the name the client registers with; the bus lets it cancel its own jobs. */
  owner: string;
  /**
   * How long to wait between connection attempts.
   * @default {{ initialMs: 100, maxMs: 5000, factor: 2, jitter: "full" }}
   */
  backoff?: BackoffOptions | undefined;
  /**
   * Where time and the timers come from.
   * @default {systemClock}
   */
  clock?: Clock | undefined;
  /**
   * A job waited for and not heard of for this long is asked for again with `show` (events
   * the bus dropped for a slow reader are not re-sent). 0 turns the re-check off.
   * @default {5000}
   */
  recheckMs?: number | undefined;
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

/** What {@linkcode JobClient.submit} takes besides the payload. */
export interface JobSubmitOptions {
  /** The job's id: {@linkcode newJobId} makes one. */
  id: string;
}

/** The bus's answer to a submission. */
export type SubmitAnswer =
  | {
    /** Taken: new for the bus (or re-sent after a reconnect and known by then). */
    status: "accepted";
    /** The job. */
    id: string;
    /** Why it waits with nothing to run it, if the bus said so. */
    waiting?: string;
  }
  | {
    /** The bus knew the id already (another job): nothing was submitted. */
    status: "duplicate";
    /** The job. */
    id: string;
    /** The known job's state. */
    state: BusJobState;
  }
  | {
    /** Refused: the reason names the field. */
    status: "rejected";
    /** The job. */
    id: string;
    /** Why. */
    reason: string;
  };

/** How a job ended, as {@linkcode JobClient.wait} tells it. */
export interface JobEnd {
  /** The job. */
  id: string;
  /** Its final state: `succeeded`, `failed`, `timed_out`, `cancelled`, `evicted`, `delivered`. */
  state: BusJobState;
  /** Its result, when its scheduler reported one. */
  result?: JobResult;
  /** Why, when known. */
  reason?: string;
  /** The scheduler that reported its end. */
  scheduler?: string;
}

/** Filters of {@linkcode JobClient.list}. */
export interface ListFilters {
  /** Only jobs in these states. */
  states?: readonly BusJobState[];
  /** Only jobs whose name or id contains this text. */
  name?: string;
  /** Only jobs of this owner. */
  owner?: string;
  /** At most this many (the bus's default 100, at most 10,000). */
  limit?: number;
}

/** A piece of a followed job's output (type `"output"`). */
export class JobOutputEvent extends Event {
  /**
   * Creates the event.
   *
   * @param id The job.
   * @param stream Which stream.
   * @param data The text.
   * @param dropped Bytes the scheduler dropped before this piece (rate limit), or 0.
   */
  constructor(
    readonly id: string,
    readonly stream: "stdout" | "stderr",
    readonly data: string,
    readonly dropped: number,
  ) {
    super("output");
  }
}

/** A job's lifecycle change as the bus sent it (type `"job"`). */
export class JobChangeEvent extends Event {
  /**
   * Creates the event.
   *
   * @param id The job.
   * @param state Its new state.
   * @param final Whether it is final.
   * @param scheduler The scheduler concerned, if any.
   */
  constructor(
    readonly id: string,
    readonly state: BusJobState,
    readonly final: boolean,
    readonly scheduler: string | undefined,
  ) {
    super("job");
  }
}

/** The events of a {@linkcode JobClient}, by type. */
export interface JobClientEventMap {
  /** A piece of output of a job submitted with `follow: true`. */
  output: JobOutputEvent;
  /** A lifecycle change of one of the owner's jobs. */
  job: JobChangeEvent;
}

/** Ends of jobs kept for a later {@linkcode JobClient.wait}. */
const MAX_ENDED = 10_000;

type Kind = "job_request" | "cancel" | "set_priority" | "list" | "show";

/** A request sent (or to send) and not answered yet. */
interface Pending {
  kind: Kind;
  id: string | undefined;
  message: Record<string, unknown>;
  sends: number;
  settle: (answer: BusMessage) => void;
  fail: (error: Error) => void;
}

/** A job waited for. */
interface Watch {
  payload: JobPayload | undefined; // set when this client submitted it: re-sent on reconnect
  heardAt: number;
  asking: boolean; // a `show` or re-sent `job_request` for it is in flight
  end: JobEnd | undefined;
  done: PromiseWithResolvers<JobEnd>;
}

/**
 * Makes a job id as the CLIs do: `j-` and 12 random hex digits.
 *
 * @returns A new id.
 * @example
 * ```ts
 * import { newJobId } from "./job_client.ts";
 * console.log(/^j-[0-9a-f]{12}$/.test(newJobId())); // true
 * ```
 */
export function newJobId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `j-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * A client of the bus for one owner: submissions, their ends, queries, cancel and priority.
 * Requests wait while the bus is unreachable and are sent (again) on each connection.
 *
 * @example
 * ```ts
 * import { JobClient, newJobId } from "./job_client.ts";
 * // Port 9: no bus there (an example must never submit to a bus a developer has running).
 * await using client = new JobClient("ws://127.0.0.1:9", { owner: "docs" });
 * client.start();
 * const ready = await client.ready(AbortSignal.timeout(50)).then(() => true, () => false);
 * console.log(ready, /^j-/.test(newJobId())); // false true
 * ```
 */
export class JobClient extends TypedEventTarget<JobClientEventMap> implements AsyncDisposable {
  #bus: BusClient;
  #clock: Clock;
  #recheckMs: number;
  #pending: Pending[] = [];
  #watches = new Map<string, Watch>();
  #registered = Promise.withResolvers<void>();
  #timer: TimerId | undefined;
  #ended: string[] = []; // ids of watches that ended, oldest first
  #ready = false; // registered on the current connection
  #servedOnce = false; // registered at least once
  #closed = false;
  #cursor = new EventCursor(); // the resume point in the bus's events

  /**
   * Creates the client; it connects on {@linkcode JobClient.start}.
   *
   * @param url The bus, `ws://` or `wss://`, or several (buses of one cluster: see `BusClient`).
   * @param options See {@linkcode JobClientOptions}.
   * @throws {TypeError} For a bad URL or owner.
   */
  constructor(url: string | readonly string[], options: JobClientOptions) {
    super();
    const owner = options.owner;
    if (typeof owner !== "string" || owner.length < 1 || owner.length > 128) {
      throw new TypeError(
        `Cannot create JobClient: 'owner' must be 1..128 characters, got ${String(owner)}`,
      );
    }
    this.#clock = options.clock ?? systemClock;
    this.#recheckMs = options.recheckMs ?? 5000;
    this.#registered.promise.catch(() => {});
    this.#bus = new BusClient(url, {
      register: () => ({
        cmd: "register",
        type: "producer",
        protocol: PROTOCOL_VERSION,
        name: owner,
        ...this.#cursor.register(),
      }),
      backoff: options.backoff,
      clock: this.#clock,
      seedBusAfterMs: 0,
      token: options.token,
      caCerts: options.caCerts,
    });
    this.#bus.addEventListener("registered", (event) => this.#onRegistered(event.message));
    this.#bus.addEventListener("close", () => this.#ready = false);
    this.#bus.addEventListener("message", (event) => this.#onMessage(event));
    // Refused (401, a bad certificate) after it had served us: retrying will not help the
    // requests and waits at hand (a revoked token): fail them, and stop.
    this.#bus.addEventListener("error", (event) => {
      if (event.refused && this.#servedOnce) this.#refused(event.error.message);
    });
  }

  #refused(message: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopTimer();
    const error = new JobClientRefusedError(message);
    for (const pending of this.#pending.splice(0)) pending.fail(error);
    for (const watch of this.#watches.values()) {
      watch.done.promise.catch(() => {});
      if (!watch.end) watch.done.reject(error);
    }
    void this.#bus.close();
  }

  /** The bus connection underneath (its `open`, `close`, `reconnecting`, `error` events). */
  get bus(): BusClient {
    return this.#bus;
  }

  /** Starts connecting (again and again until {@linkcode JobClient.close}). */
  start(): void {
    this.#bus.start();
  }

  /**
   * Resolves once the bus has answered the client's registration (the first time).
   *
   * @param signal Gives up when aborted (rejects with the signal's reason).
   * @returns A promise of the registration.
   */
  ready(signal?: AbortSignal): Promise<void> {
    return signal ? untilAborted(this.#registered.promise, signal) : this.#registered.promise;
  }

  /**
   * Submits a job under the caller's id; the answer says whether the bus took it. A job
   * accepted is then watched: {@linkcode JobClient.wait} tells its end.
   *
   * @param payload The job (a command job's spec, or a sleeper job's).
   * @param options The id.
   * @returns The bus's answer.
   * @throws {ProducerStateError} After `close()`.
   */
  async submit(payload: JobPayload, options: JobSubmitOptions): Promise<SubmitAnswer> {
    const { id } = options;
    this.#watch(id, payload);
    let sends = 0;
    const message = { cmd: "job_request", id, payload };
    const answer = await this.#request("job_request", id, message, (n) => sends = n);
    if (answer.cmd === "rejected") {
      this.#watches.delete(id);
      return { status: "rejected", id, reason: String(answer.reason) };
    }
    if (answer.duplicate === true && sends === 1) { // sent once, and known already: not ours
      this.#watches.delete(id);
      return { status: "duplicate", id, state: answer.state as BusJobState };
    }
    this.#heard(id, answer);
    const waiting = typeof answer.waiting === "string" ? { waiting: answer.waiting } : {};
    return { status: "accepted", id, ...waiting };
  }

  /**
   * Resolves with the job's end: at once if it has ended already, else on its final event.
   * A job this client did not submit is asked for with `show` first.
   *
   * @param id The job.
   * @param signal Gives up when aborted (rejects with the signal's reason; the job runs on).
   * @returns The job's final state, result and reason.
   * @throws {JobOpError} When the bus does not know the job.
   */
  wait(id: string, signal?: AbortSignal): Promise<JobEnd> {
    let watch = this.#watches.get(id);
    if (!watch) {
      watch = this.#watch(id, undefined);
      this.#ask(id, watch);
    }
    return signal ? untilAborted(watch.done.promise, signal) : watch.done.promise;
  }

  /**
   * Lists jobs, as the bus orders them.
   *
   * @param filters See {@linkcode ListFilters}.
   * @returns The jobs and how many matched.
   * @throws {JobOpError} When the bus refuses (its reason).
   */
  async list(filters: ListFilters = {}): Promise<JobList> {
    const message: Record<string, unknown> = { cmd: "list" };
    if (filters.states?.length) message.states = [...filters.states];
    if (filters.name !== undefined) message.name = filters.name;
    if (filters.owner !== undefined) message.owner = filters.owner;
    if (filters.limit !== undefined) message.limit = filters.limit;
    const answer = await this.#request("list", undefined, message);
    this.#throwIfError("list", "", answer);
    const jobs = Array.isArray(answer.jobs) ? answer.jobs as JobSummary[] : [];
    return { jobs, total: typeof answer.total === "number" ? answer.total : jobs.length };
  }

  /**
   * One job's details: its spec, state, result (tails included) and history.
   *
   * @param id The job.
   * @returns The details.
   * @throws {JobOpError} `unknown job`, or another refusal of the bus.
   */
  async show(id: string): Promise<JobDetails> {
    const answer = await this.#request("show", id, { cmd: "show", id });
    this.#throwIfError("show", id, answer);
    if (!isJsonObject(answer.job)) throw new JobOpError("show", id, "the bus sent no job");
    return answer.job as unknown as JobDetails;
  }

  /**
   * Cancels one of the owner's jobs.
   *
   * @param id The job.
   * @returns Once the bus acknowledged it.
   * @throws {JobOpError} With the bus's reason (unknown job, not yours, already finished).
   */
  async cancel(id: string): Promise<void> {
    const answer = await this.#request("cancel", id, { cmd: "cancel", id });
    this.#throwIfError("cancel", id, answer);
  }

  /**
   * Changes the priority of one of the owner's jobs while it waits in the bus.
   *
   * @param id The job.
   * @param priority 0..10, lower = more urgent.
   * @returns Once the bus acknowledged it.
   * @throws {JobOpError} With the bus's reason (not waiting, not yours, bad priority).
   */
  async setPriority(id: string, priority: number): Promise<void> {
    const answer = await this.#request("set_priority", id, { cmd: "set_priority", id, priority });
    this.#throwIfError("set_priority", id, answer);
  }

  /**
   * Closes the connection; unanswered requests and waits reject. Idempotent.
   *
   * @returns Once the socket is closed.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#stopTimer();
      const error = new ProducerStateError("the JobClient was closed");
      this.#registered.reject(error);
      for (const pending of this.#pending.splice(0)) pending.fail(error);
      for (const watch of this.#watches.values()) {
        watch.done.promise.catch(() => {});
        if (!watch.end) watch.done.reject(error);
      }
    }
    await this.#bus.close();
  }

  /** Same as {@linkcode JobClient.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Sends a request now if registered, else on the next registration (and again after each). */
  #request(
    kind: Kind,
    id: string | undefined,
    message: Record<string, unknown>,
    onSend?: (sends: number) => void,
  ): Promise<BusMessage> {
    if (this.#closed) {
      return Promise.reject(new ProducerStateError(`Cannot send ${kind}: the JobClient is closed`));
    }
    const { promise, resolve, reject } = Promise.withResolvers<BusMessage>();
    const pending: Pending = { kind, id, message, sends: 0, settle: resolve, fail: reject };
    if (onSend) {
      pending.settle = (answer) => {
        onSend(pending.sends);
        resolve(answer);
      };
    }
    this.#pending.push(pending);
    if (this.#ready) this.#send(pending);
    return promise;
  }

  #send(pending: Pending): void {
    if (this.#bus.send(pending.message)) pending.sends++;
  }

  #watch(id: string, payload: JobPayload | undefined): Watch {
    const existing = this.#watches.get(id);
    if (existing) return existing;
    const watch: Watch = {
      payload,
      heardAt: this.#clock.now(),
      asking: false,
      end: undefined,
      done: Promise.withResolvers<JobEnd>(),
    };
    this.#watches.set(id, watch);
    this.#startTimer();
    return watch;
  }

  /**
   * Asks the bus where a job stands: with `show`, or (`resend`, after a reconnect, for a job
   * this client submitted) with its `job_request` again, which also re-submits it to a bus that
   * restarted and forgot it. A `show` answered `unknown job` does the same for such a job.
   */
  #ask(id: string, watch: Watch, resend = false): void {
    if (watch.asking || watch.end || this.#closed) return;
    if (this.#pending.some((p) => p.id === id && (p.kind === "job_request" || p.kind === "show"))) {
      return; // an answer is coming (it is re-sent with the other pending requests)
    }
    watch.asking = true;
    const done = (): void => {
      watch.asking = false;
      watch.heardAt = this.#clock.now();
    };
    if (resend && watch.payload) {
      this.#request("job_request", id, { cmd: "job_request", id, payload: watch.payload })
        .then((answer) => {
          done();
          if (answer.cmd === "rejected") {
            this.#end(id, { id, state: "failed", reason: String(answer.reason) });
          } else this.#heard(id, answer);
        }, () => done());
      return;
    }
    this.#request("show", id, { cmd: "show", id }).then((answer) => {
      done();
      if (answer.cmd !== "error") {
        if (isJsonObject(answer.job)) this.#heard(id, answer.job);
      } else if (watch.payload) this.#ask(id, watch, true);
      else {
        const error = new JobOpError("show", id, String(answer.reason));
        watch.done.promise.catch(() => {});
        this.#watches.delete(id);
        watch.done.reject(error);
      }
    }, () => done());
  }

  /** Takes what an answer, an event or a `show` says of a job; ends its watch if final. */
  #heard(id: string, said: Record<string, unknown>): void {
    const watch = this.#watches.get(id);
    if (!watch) return;
    watch.heardAt = this.#clock.now();
    const state = said.state as BusJobState | undefined;
    if (state === undefined) return;
    // A `show` has no `final` flag: an `evicted` there is one the bus did not requeue.
    const final = said.final === true || said.cmd === undefined;
    if (!isFinalBusState(state, final)) return;
    const end: JobEnd = { id, state };
    if (isJsonObject(said.result)) end.result = said.result as unknown as JobResult;
    if (typeof said.reason === "string") end.reason = said.reason;
    if (typeof said.scheduler === "string") end.scheduler = said.scheduler;
    this.#end(id, end);
  }

  #end(id: string, end: JobEnd): void {
    const watch = this.#watches.get(id);
    if (!watch || watch.end) return;
    watch.end = end;
    watch.payload = undefined; // nothing to re-send any more
    watch.done.resolve(end);
    this.#ended.push(id); // kept for a later wait(id), the most recent MAX_ENDED
    if (this.#ended.length > MAX_ENDED) this.#watches.delete(this.#ended.shift() ?? "");
  }

  #onRegistered(message: BusMessage): void {
    this.#cursor.registered(message.seq);
    this.#ready = true;
    this.#servedOnce = true;
    this.#registered.resolve();
    for (const pending of this.#pending) this.#send(pending);
    for (const [id, watch] of this.#watches) this.#ask(id, watch, true);
  }

  #onMessage(event: BusMessageEvent): void {
    const message = event.message;
    switch (message.cmd) {
      case "event":
        if (!this.#cursor.take(message.seq)) return; // replayed, and taken before
        return this.#onEvent(message);
      case "resync":
        return this.#onResync(event);
      case "output":
        if (typeof message.id !== "string") return;
        this.dispatchEvent(
          new JobOutputEvent(
            message.id,
            message.stream === "stderr" ? "stderr" : "stdout",
            typeof message.data === "string" ? message.data : "",
            typeof message.dropped === "number" ? message.dropped : 0,
          ),
        );
        return;
      case "accepted":
      case "rejected":
        return this.#answer(["job_request"], message);
      case "ack":
        return this.#answer([message.op === "cancel" ? "cancel" : "set_priority"], message);
      case "jobs":
        return this.#answer(["list"], message);
      case "job_info":
        return this.#answer(
          ["show"],
          message,
          isJsonObject(message.job) ? message.job.id : undefined,
        );
      case "error": {
        const op = message.op;
        const kinds: Kind[] = op === "job_request" || op === "cancel" || op === "set_priority" ||
            op === "list" || op === "show"
          ? [op]
          : ["job_request", "cancel", "set_priority", "list", "show"];
        return this.#answer(kinds, message);
      }
    }
  }

  /** The bus cannot replay all we missed: ask where each job waited for stands, as on reconnect. */
  #onResync({ parsed }: BusMessageEvent): void {
    if (!parsed.ok || parsed.message.cmd !== "resync") return;
    this.#cursor.resync(parsed.message.seq);
    for (const [id, watch] of this.#watches) this.#ask(id, watch, true);
  }

  #onEvent(message: BusMessage): void {
    const { id, state } = message;
    if (typeof id !== "string" || typeof state !== "string") return;
    const scheduler = typeof message.scheduler === "string" ? message.scheduler : undefined;
    const final = isFinalBusState(state as BusJobState, message.final === true);
    this.dispatchEvent(new JobChangeEvent(id, state as BusJobState, final, scheduler));
    this.#heard(id, message);
  }

  /** Settles the oldest pending request of these kinds (and this id, when the answer has one). */
  #answer(kinds: Kind[], message: BusMessage, id: unknown = message.id): void {
    const index = this.#pending.findIndex((p) =>
      kinds.includes(p.kind) && (typeof id !== "string" || p.id === undefined || p.id === id)
    );
    if (index < 0) return;
    const [pending] = this.#pending.splice(index, 1);
    pending?.settle(message);
  }

  #throwIfError(op: JobOp, id: string, answer: BusMessage): void {
    if (answer.cmd === "error") throw new JobOpError(op, id, String(answer.reason));
  }

  #startTimer(): void {
    if (this.#recheckMs <= 0 || this.#timer !== undefined || this.#closed) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#recheck();
    }, this.#recheckMs);
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Asks again about jobs not heard of for `recheckMs` (at most 100 a round). */
  #recheck(): void {
    const now = this.#clock.now();
    let asked = 0;
    let open = false;
    for (const [id, watch] of this.#watches) {
      if (watch.end) continue;
      open = true;
      if (!this.#bus.connected || asked >= 100 || now - watch.heardAt < this.#recheckMs) continue;
      if (watch.asking) continue;
      asked++;
      this.#ask(id, watch);
    }
    if (open) this.#startTimer();
  }
}

/** Waits for `promise`, or rejects with the signal's reason once it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  const { promise: aborted, reject } = Promise.withResolvers<never>();
  const onAbort = (): void => reject(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  return Promise.race([promise, aborted]).finally(() =>
    signal.removeEventListener("abort", onAbort)
  );
}
