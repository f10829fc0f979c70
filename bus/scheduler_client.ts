/**
 * The scheduler's side of the bus (protocol 2): a {@linkcode Runner} fed with the jobs the bus
 * gives it, reporting every lifecycle change back, and handing its unfinished jobs back to the
 * bus when it shuts down.
 *
 * @module
 */

import type { BackoffOptions } from "./backoff.ts";
import { BusClient, type BusMessageEvent } from "./client.ts";
import type { JobPayload, SchedulerEventMessage, SchedulerJobState } from "./protocol.ts";
import { isJobId, PROTOCOL_VERSION, validatePayload } from "./protocol.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import { type EvictMode, Runner, type RunnerOptions } from "../scheduler/runner.ts";
import { isFinalState, JOB_STATES, type JobEvent, type JobState } from "../scheduler/job.ts";

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
}

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
  /** Ids of jobs whose final event the bus has not been sent yet (they count as "running"). */
  #held = new Set<string>();
  /** Ids of the jobs a seed bus sent (given here): not reported to the bus. */
  #seedJobs = new Set<string>();
  #seedJobCount = 0;
  #onJobEvent = (event: JobEvent<JobPayload>): void => this.#report(event);
  #closing: Promise<void> | undefined;

  /**
   * Creates the link; it connects on {@linkcode SchedulerClient.start}.
   *
   * @param url The bus's WebSocket URL.
   * @param options See {@linkcode SchedulerClientOptions}; `launch` is required.
   * @throws {TypeError} If `url` is not a `ws:`/`wss:` URL, or as `new Runner()` does.
   * @throws {RangeError} If `evict` is unknown, or as `new Runner()` does.
   */
  constructor(url: string, options: SchedulerClientOptions) {
    const { name, backoff, seedBusAfterMs, evict = "requeue", ...runnerOptions } = options;
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
    this.#bus = new BusClient(url, {
      register: () => ({
        cmd: "register",
        type: "scheduler",
        protocol: PROTOCOL_VERSION,
        name: this.#name,
        slots: this.#runner.slots,
        running: [...this.#held],
      }),
      backoff,
      seedBusAfterMs,
      clock: this.#clock,
    });
    this.#bus.addEventListener("registered", () => this.#flush());
    this.#bus.addEventListener("message", (event) => this.#receive(event));
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
    await this.#bus.close();
  }

  #receive({ message: raw, parsed }: BusMessageEvent): void {
    if (this.#closing) return;
    if (!parsed.ok) {
      if (raw.cmd === undefined && this.#bus.seedBus) this.#runSeedJob(raw);
      else if (raw.cmd === "job" && isJobId(raw.id)) this.#fail(raw.id, parsed.reason);
      return;
    }
    const message = parsed.message;
    if (message.cmd === "job") {
      const { id, payload } = message;
      try {
        this.#held.add(id);
        this.#runner.submit(payload, { id, priority: payload.priority });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        if (this.#runner.get(id)) return; // already ours (a duplicate send): keep it running
        this.#fail(id, reason);
      }
    } else if (message.cmd === "cancel") {
      this.#runner.cancel(message.id, message.reason);
    }
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
    this.#send({ cmd: "event", id, state: "failed", at: this.#clock.now(), reason });
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
    if (isFinalState(state)) {
      message.result = { code: job.code, durationMs: job.runMs, attempts: job.attempts };
    }
    this.#send(message);
  }

  /** Sends now, or keeps the message (in order) for after the next registration. */
  #send(message: SchedulerEventMessage): void {
    this.#outbox.push(message);
    this.#flush();
  }

  /** Sends what the outbox holds, in order, while the bus takes it. */
  #flush(): void {
    while (this.#outbox.length > 0 && this.#bus.send(this.#outbox[0])) {
      const sent = this.#outbox.shift()!;
      // Final for this scheduler (evicted too: the bus requeues it): no longer its job.
      if (isFinalState(sent.state)) this.#held.delete(sent.id);
    }
  }
}
