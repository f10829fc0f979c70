/**
 * The scheduler's side of the bus (protocol 2): a {@linkcode Runner} fed with the jobs the bus
 * gives it, reporting every lifecycle change back, and handing its unfinished jobs back to the
 * bus when it shuts down.
 *
 * @module
 */

import type { BackoffOptions } from "./backoff.ts";
import { BusClient, type BusMessageEvent } from "./client.ts";
import type {
  JobPayload,
  OutputMessage,
  RegisterMessage,
  SchedulerEventMessage,
  SchedulerJobState,
} from "./protocol.ts";
import { isJobId, PROTOCOL_VERSION, validatePayload } from "./protocol.ts";
import { OutputThrottle } from "./output_throttle.ts";
import { OutcomeJournal } from "./outcome_journal.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import { type EvictMode, Runner, type RunnerOptions } from "../scheduler/runner.ts";
import {
  isFinalState,
  JOB_STATES,
  type JobEvent,
  type JobState,
  type JobView,
} from "../scheduler/job.ts";
import { allowsCommand, formatLabels, labelsMatch } from "../scheduler/command_spec.ts";
import type { JobResult } from "../scheduler/job_result.ts";

/**
 * What happens to a running job this scheduler evicts for a more urgent one:
 * - `requeue`: terminated, reported `evicted`, and the bus puts it back in its queue to run
 *   again, here or on another scheduler;
 * - `kill`: terminated and reported `evicted` with `"requeue": false`: the bus ends it there
 *   (the seed's behavior);
 * - `suspend`: paused here (SIGSTOP), reported `suspended`, and resumed here (`resumed`) when a
 *   slot frees.
 */
export type SchedulerEvictMode = "requeue" | "kill" | "suspend";

/**
 * The runner's mode for each scheduler mode: the runner never requeues a job itself (the bus
 * does, so a requeued job may run on any scheduler and the bus always knows where it is).
 */
const RUNNER_EVICT: Readonly<Record<SchedulerEvictMode, EvictMode>> = {
  requeue: "kill",
  kill: "kill",
  suspend: "suspend",
};

/**
 * Options for {@linkcode SchedulerClient}: those of the {@linkcode Runner} it runs the jobs with
 * (its `slots` are the credit announced to the bus), but the eviction mode is the scheduler's.
 */
export interface SchedulerClientOptions extends Omit<RunnerOptions<JobPayload>, "evict"> {
  /**
   * What eviction does to the evicted job (see {@linkcode SchedulerEvictMode}).
   * @default {"requeue"}
   */
  evict?: SchedulerEvictMode;
  /**
   * The scheduler's name on the bus (shown in events and `/status`; keep it stable across
   * restarts so the bus recognizes a reconnecting scheduler).
   * @default {"scheduler-<pid>"}
   */
  name?: string;
  /**
   * How to reconnect when the bus goes away; see {@linkcode BackoffOptions}.
   * @default {{ initialMs: 100, maxMs: 5000, factor: 2, jitter: "full" }}
   */
  backoff?: BackoffOptions;
  /**
   * How long to wait for the bus's `registered` before taking it for the seed's bus (see
   * `BusClientOptions.seedBusAfterMs`; a bare payload tells at once); 0 never does.
   * @default {2000}
   */
  seedBusAfterMs?: number;
  /**
   * The scheduler's labels (`--label gpu=a100`), announced to the bus: jobs that `require`
   * others are refused.
   * @default {{}}
   */
  labels?: Record<string, string>;
  /**
   * The commands this scheduler runs (`--allow-command`): names, absolute paths or `"*"`;
   * announced to the bus. Empty: no command jobs (they are refused).
   * @default {[]}
   */
  commands?: string[];
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
  /**
   * A directory where the final reports the bus has not acknowledged yet are kept
   * (`--state-dir`, see `OutcomeJournal`): a scheduler started again on it reports them, so a
   * job that ended while it or the bus was down is not run again. Without it they are kept in
   * memory only.
   * @default {undefined}
   */
  stateDir?: string | undefined;
  /**
   * The most final reports kept unacknowledged; beyond, the oldest is forgotten (with a notice).
   * @default {100000}
   */
  maxUnacked?: number;
  /**
   * Receives what the client notices (a report given up, a torn journal line).
   * @default {() => {}}
   */
  onNotice?: ((message: string) => void) | undefined;
}

/** The default of {@linkcode SchedulerClientOptions.maxUnacked}. */
const MAX_UNACKED = 100_000;

/**
 * Whether the bus hears of a runner state: all but `requeued`, which a runner in `kill` or
 * `suspend` mode (the only ones {@linkcode RUNNER_EVICT} gives) never enters. After a final one
 * (see `FINAL_STATES`; `evicted` too: the bus requeues it) the job is no longer this scheduler's.
 */
function isReported(state: JobState): state is SchedulerJobState {
  return state !== "requeued";
}

/** The runner's states reported to the bus, as they are. */
const REPORTED: readonly SchedulerJobState[] = JOB_STATES.filter(isReported);

/**
 * Links a {@linkcode Runner} to the bus as a protocol-2 scheduler.
 *
 * - Registers with its name, its slot count and, after a reconnect, the ids of the jobs it
 *   still holds (so the bus re-attaches them instead of running them twice).
 * - Submits every `job` the bus sends to the runner (priority from the payload) and stops a job
 *   on `cancel`.
 * - Reports each of the runner's job events as an `event` message. Events that cannot be sent
 *   while the bus is away are kept, in order, and sent after the next registration.
 * - Evicts as its `evict` option says (see {@linkcode SchedulerEvictMode}): an evicted job is
 *   reported `evicted`, and the bus puts it back in its queue (`requeue`, cluster-wide) or ends
 *   it (`kill`); `suspend` reports `suspended`/`resumed`.
 * - {@linkcode SchedulerClient.close} says `drain` (the bus sends nothing more), terminates the
 *   running jobs, then leaves the bus, which requeues every job this scheduler did not finish:
 *   nothing is lost, nothing runs twice, and nothing is sent to it in between.
 * - Against the seed's bus (the bus client's `seedbus` event: no `registered` came, or a bare
 *   payload did), it runs each bare payload as a job with a local id (`seed-1`, `seed-2`, ...)
 *   and reports nothing: the seed's bus takes no reports.
 *
 * @example
 * ```ts
 * import { SchedulerClient } from "./scheduler_client.ts";
 * import { sleeperLauncher } from "../scheduler/sleeper_launcher.ts";
 * import { jobLauncher } from "../scheduler/job_launcher.ts";
 *
 * const scheduler = new SchedulerClient("ws://127.0.0.1:9", { // no bus: nothing runs
 *   name: "node-a",
 *   slots: 2,
 *   evict: "requeue",
 *   launch: jobLauncher({ sleeper: sleeperLauncher() }),
 * });
 * console.log(scheduler.runner.slots); // 2
 * // scheduler.start(); ... later:
 * await scheduler.close();
 * ```
 */
export class SchedulerClient implements AsyncDisposable {
  #runner: Runner<JobPayload>;
  #name: string;
  #evict: SchedulerEvictMode;
  #clock: Clock;
  #bus: BusClient;
  #outbox: SchedulerEventMessage[] = [];
  /** Ids of the jobs the bus gave that have not ended here yet (they count as "running"). */
  #held = new Set<string>();
  /**
   * Final reports the bus has not acknowledged (`reported`), oldest first, by job: sent again
   * after each registration; their ids count as "running" too.
   */
  #unacked = new Map<string, SchedulerEventMessage>();
  #maxUnacked: number;
  #journal: OutcomeJournal | undefined;
  #onNotice: (message: string) => void;
  /** This connection got `registered`: events may go. */
  #ready = false;
  /** The bus of this connection acknowledges final reports (its `registered` has a `seq`). */
  #acks = false;
  /** Ids of the jobs a seed bus sent (given here): not reported to the bus. */
  #seedJobs = new Set<string>();
  #seedJobCount = 0;
  /** The attempt number the bus gave each job it sent (1 when it did not say). */
  #attempts = new Map<string, number>();
  #labels: Record<string, string>;
  #commands: string[];
  #output: OutputThrottle;
  #onJobEvent = (event: JobEvent<JobPayload>): void => this.#report(event);
  #closing: Promise<void> | undefined;

  /**
   * Creates the link; it connects on {@linkcode SchedulerClient.start}.
   *
   * @param url The bus's WebSocket URL, or several (buses of one cluster: see `BusClient`).
   * @param options See {@linkcode SchedulerClientOptions}; `launch` is required.
   * @throws {TypeError} If `url` is not a `ws:`/`wss:` URL, or as `new Runner()` does.
   * @throws {RangeError} If `evict` is unknown, or as `new Runner()` does.
   */
  constructor(url: string | readonly string[], options: SchedulerClientOptions) {
    const {
      name,
      backoff,
      seedBusAfterMs,
      evict = "requeue",
      labels = {},
      commands = [],
      token,
      caCerts,
      stateDir,
      maxUnacked = MAX_UNACKED,
      onNotice,
      ...runnerOptions
    } = options;
    if (!Number.isSafeInteger(maxUnacked) || maxUnacked < 1) {
      throw new RangeError(
        `Cannot create SchedulerClient: 'maxUnacked' must be a positive integer, got ${maxUnacked}`,
      );
    }
    if (!Object.hasOwn(RUNNER_EVICT, evict)) {
      throw new RangeError(
        `Cannot create SchedulerClient: 'evict' must be one of ${
          Object.keys(RUNNER_EVICT).join(", ")
        }, got ${String(evict)}`,
      );
    }
    this.#evict = evict;
    this.#runner = new Runner<JobPayload>({ ...runnerOptions, evict: RUNNER_EVICT[evict] });
    this.#clock = options.clock ?? systemClock;
    this.#name = name ?? `scheduler-${Deno.pid}`;
    this.#maxUnacked = maxUnacked;
    this.#onNotice = onNotice ?? (() => {});
    this.#labels = { ...labels };
    this.#commands = [...commands];
    this.#output = new OutputThrottle((message) => this.#sendOutput(message), {
      clock: this.#clock,
    });
    this.#bus = new BusClient(url, {
      register: () => this.#registration(),
      backoff,
      seedBusAfterMs,
      clock: this.#clock,
      token,
      caCerts,
    });
    this.#bus.addEventListener("open", () => this.#ready = false);
    this.#bus.addEventListener("close", () => this.#ready = false);
    this.#bus.addEventListener("registered", ({ message }) => this.#registered(message));
    this.#bus.addEventListener("message", (event) => this.#receive(event));
    if (stateDir !== undefined) {
      // Last: nothing above throws once the directory is held.
      this.#journal = OutcomeJournal.open(stateDir, { name: this.#name, onNotice: this.#onNotice });
      for (const message of this.#journal.pending) this.#unacked.set(message.id, message);
    }
  }

  /** The ids of the final reports the bus has not acknowledged yet, oldest first. */
  get unacknowledged(): string[] {
    return [...this.#unacked.keys()];
  }

  /** The bus connection, for its `open`, `close`, `reconnecting` and `error` events. */
  get bus(): BusClient {
    return this.#bus;
  }

  /** The runner, for its job events, `counts` and `snapshot()` (its `evict` mode is internal). */
  get runner(): Runner<JobPayload> {
    return this.#runner;
  }

  /** The scheduler's name on the bus. */
  get name(): string {
    return this.#name;
  }

  /**
   * Takes a piece of a running job's output, for a job submitted with `follow: true` (others
   * are ignored): sent to the bus as `output` messages, coalesced per 100 ms, at most 64 KiB per
   * job per second (beyond: dropped, then one message with the `dropped` count). Best effort:
   * output while the bus is away is lost. The chunk is copied.
   *
   * @param id The job.
   * @param stream Which stream.
   * @param chunk The bytes.
   */
  output(id: string, stream: OutputMessage["stream"], chunk: Uint8Array): void {
    const payload = this.#runner.get(id)?.payload;
    if (this.#closing || payload === undefined || payload.follow !== true) return;
    this.#output.push(id, stream, chunk);
  }

  /** Starts listening to the runner and connecting to the bus. No effect once closed. */
  start(): void {
    if (this.#closing) return;
    for (const state of REPORTED) this.#runner.addEventListener(state, this.#onJobEvent);
    this.#bus.start();
  }

  /**
   * Shuts down: closes the runner (running jobs are terminated), then the connection; the bus
   * requeues the jobs this scheduler did not finish. Idempotent.
   *
   * @returns A promise that resolves once the runner and the connection are closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** Same as {@linkcode SchedulerClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(): Promise<void> {
    for (const state of REPORTED) this.#runner.removeEventListener(state, this.#onJobEvent);
    // Tell the bus to send nothing more, terminate, then leave: the bus requeues every job of a
    // scheduler that leaves, and by then none of them runs here any more, so none runs twice.
    if (!this.#bus.seedBus) this.#bus.send({ cmd: "drain" });
    await this.#runner.close();
    this.#output.close();
    await this.#bus.close();
    this.#journal?.close(); // the unacknowledged reports stay in it, for the next start
  }

  #registration(): RegisterMessage {
    const message: RegisterMessage = {
      cmd: "register",
      type: "scheduler",
      protocol: PROTOCOL_VERSION,
      name: this.#name,
      slots: this.#runner.slots,
      running: [...new Set([...this.#held, ...this.#unacked.keys()])],
    };
    if (Object.keys(this.#labels).length > 0) message.labels = this.#labels;
    if (this.#commands.length > 0) message.commands = this.#commands;
    return message;
  }

  #receive({ message: raw, parsed }: BusMessageEvent): void {
    if (parsed.ok && parsed.message.cmd === "reported") {
      return this.#acknowledged(parsed.message.ids);
    }
    if (this.#closing) return;
    if (!parsed.ok) {
      if (raw.cmd === undefined && this.#bus.seedBus) this.#runSeedJob(raw);
      else if (raw.cmd === "job" && isJobId(raw.id)) this.#fail(raw.id, parsed.reason);
      return;
    }
    const message = parsed.message;
    if (message.cmd === "job") {
      const { id, payload } = message;
      if (this.#runner.get(id) === undefined) this.#attempts.set(id, attemptOf(raw.attempt));
      const refusal = this.#refusal(payload);
      if (refusal !== undefined) return this.#fail(id, refusal);
      try {
        this.#held.add(id);
        this.#runner.submit(payload, { id, priority: payload.priority, ...this.#timeout(payload) });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        if (this.#runner.get(id)) return; // already ours (a duplicate send): keep it running
        this.#fail(id, reason);
      }
    } else if (message.cmd === "cancel") {
      this.#runner.cancel(message.id, message.reason);
    }
  }

  /** Why this scheduler would not run a job, if it would not (checked before anything runs). */
  #refusal(payload: JobPayload): string | undefined {
    if ("command" in payload && Array.isArray(payload.command)) {
      const executable = String(payload.command[0]);
      if (!allowsCommand(this.#commands, executable)) {
        return `refused: command ${executable} is not allowed here`;
      }
    }
    const requires = payload.requires;
    if (isLabels(requires) && !labelsMatch(this.#labels, requires)) {
      const missing = Object.fromEntries(
        Object.entries(requires).filter(([key, value]) => this.#labels[key] !== value),
      );
      return `refused: requires ${formatLabels(missing)}, which this scheduler lacks`;
    }
    return undefined;
  }

  /** A command job's own timeout, when it is shorter than the scheduler's. */
  #timeout(payload: JobPayload): { timeoutMs?: number } {
    const timeout = "command" in payload ? payload.timeout : undefined;
    if (typeof timeout !== "number" || !(timeout > 0)) return {};
    return { timeoutMs: Math.min(timeout * 1000, this.#runner.timeoutMs) };
  }

  /** Runs a seed bus's bare payload as a job with a local id; a bad payload is dropped. */
  #runSeedJob(raw: unknown): void {
    const payload = validatePayload(raw);
    if (!payload.ok) return; // nobody to tell
    const id = `seed-${++this.#seedJobCount}`;
    this.#seedJobs.add(id); // before submit, which reports the job's first events at once
    try {
      this.#runner.submit(payload.message, { id, priority: payload.message.priority });
    } catch {
      this.#seedJobs.delete(id); // the runner is closing: the seed's bus cannot be told
    }
  }

  /** Reports a job the bus gave that cannot run here (bad message, refused by the runner). */
  #fail(id: string, reason: string): void {
    const at = this.#clock.now();
    const result: JobResult = {
      exitCode: null,
      signal: null,
      durationMs: 0,
      startedAt: null,
      endedAt: at,
      scheduler: this.#name,
      attempts: this.#attempts.get(id) ?? 1,
    };
    if (this.#runner.get(id) === undefined) this.#attempts.delete(id);
    this.#send({ cmd: "event", id, state: "failed", at, reason, result: { ...result } });
  }

  #report(event: JobEvent<JobPayload>): void {
    if (this.#seedJobs.has(event.job.id)) {
      if (isFinalState(event.state)) this.#seedJobs.delete(event.job.id);
      return;
    }
    const state = event.state;
    if (!isReported(state) || event.startsAtOnce) return; // a job that starts at once: no wait
    const job = event.job;
    const message: SchedulerEventMessage = { cmd: "event", id: job.id, state, at: event.time };
    if (job.reason !== undefined) message.reason = job.reason;
    if (state === "evicted" && this.#evict === "kill") message.requeue = false;
    if (!isFinalState(state)) return this.#send(message);
    if (state === "timed_out" || state === "cancelled" || state === "evicted") {
      // Its process is still being terminated: report once it has ended, with its output (an
      // evicted job reported earlier could start elsewhere while it still runs here).
      job.done.then(() => this.#sendFinal(job, message));
    } else {
      this.#sendFinal(job, message);
    }
  }

  /** Sends a job's last event here, with its result (after the rest of its output). */
  #sendFinal(job: JobView<JobPayload>, message: SchedulerEventMessage): void {
    const attempts = this.#attempts.get(job.id) ?? 1;
    this.#attempts.delete(job.id);
    this.#output.end(job.id);
    message.result = { ...jobResult(job, message.at ?? this.#clock.now(), this.#name, attempts) };
    this.#send(message);
  }

  /** Sends one piece of output now if the bus is there (output is not kept for later). */
  #sendOutput(message: OutputMessage): void {
    if (!this.#bus.seedBus) this.#bus.send(message);
  }

  /**
   * Sends now, or keeps the message (in order) for after the next registration. A final
   * outcome is also kept (and journaled, before it goes) until the bus acknowledges it.
   */
  #send(message: SchedulerEventMessage): void {
    if (awaitsAck(message)) this.#keep(message);
    this.#outbox.push(message);
    this.#flush();
  }

  /** Keeps a final report until acknowledged; beyond the bound, the oldest is given up. */
  #keep(message: SchedulerEventMessage): void {
    this.#unacked.delete(message.id);
    this.#unacked.set(message.id, message);
    this.#journal?.append(message);
    if (this.#unacked.size <= this.#maxUnacked) return;
    const [oldest] = this.#unacked.keys();
    if (oldest === undefined) return;
    this.#forget(oldest);
    this.#onNotice(
      `more than ${this.#maxUnacked} final reports unacknowledged by the bus: gave up ` +
        `the one of job ${oldest} (if the bus has not stored it, it may run again)`,
    );
  }

  #forget(id: string): void {
    this.#unacked.delete(id);
    this.#journal?.ack(id);
  }

  /** The bus answered `register`: re-send the unacknowledged finals, then the outbox. */
  #registered(message: { [key: string]: unknown }): void {
    this.#ready = true;
    this.#acks = typeof message.seq === "number";
    const queued = new Set(this.#outbox);
    for (const final of [...this.#unacked.values()]) {
      if (queued.has(final)) continue; // not sent yet: goes with the outbox, in its turn
      if (!this.#bus.send(final)) return;
      if (!this.#acks) this.#forget(final.id);
    }
    this.#flush();
  }

  /** The bus stored these final reports: forgotten. */
  #acknowledged(ids: readonly string[]): void {
    for (const id of ids) this.#forget(id);
  }

  /** Sends what the outbox holds, in order, while registered and the bus takes it. */
  #flush(): void {
    while (this.#ready && this.#outbox.length > 0 && this.#bus.send(this.#outbox[0])) {
      const sent = this.#outbox.shift()!;
      // Final for this scheduler (evicted too: the bus requeues it): no longer its job.
      if (isFinalState(sent.state)) this.#held.delete(sent.id);
      // A bus that never acknowledges (older than the store): forgotten once sent.
      if (!this.#acks && this.#unacked.get(sent.id) === sent) this.#forget(sent.id);
    }
  }
}

/**
 * Whether a report is kept until the bus acknowledges it: a final outcome. Not an `evicted` the
 * bus requeues: if the bus loses it, the job, no longer in `running`, is requeued all the same.
 */
function awaitsAck(message: SchedulerEventMessage): boolean {
  if (!isFinalState(message.state)) return false;
  return message.state !== "evicted" || message.requeue === false;
}

/** Whether a payload's `requires` is an object of label values (the bus checked it). */
function isLabels(value: unknown): value is Record<string, string> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The bus's `attempt` of a `job` message: a positive integer, else 1. */
function attemptOf(value: unknown): number {
  return Number.isSafeInteger(value) && (value as number) > 0 ? value as number : 1;
}

/**
 * A finished job's result, from the runner's view of it and what its launch reported.
 *
 * @param job The job (final).
 * @param endedAt When it ended, epoch ms.
 * @param scheduler This scheduler's name.
 * @param attempts The bus's attempt number.
 * @returns The result sent in the job's final event.
 */
function jobResult(
  job: JobView<JobPayload>,
  endedAt: number,
  scheduler: string,
  attempts: number,
): JobResult {
  const launch = job.launch;
  const result: JobResult = {
    exitCode: launch?.code ?? null,
    signal: launch?.signal ?? null,
    durationMs: job.runMs,
    startedAt: launch?.startError !== undefined ? null : job.startedAt ?? null,
    endedAt,
    scheduler,
    attempts,
  };
  if (launch?.startError !== undefined) result.startError = launch.startError;
  return { ...result, ...launch?.output };
}
