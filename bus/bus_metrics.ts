/**
 * The bus's metrics (`GET /metrics`): counted from a `BusServer`'s events, read from its
 * `status()` and `health()` at scrape time, plus the process's memory and CPU.
 *
 * @module
 */

import process from "node:process";
import { type Clock, systemClock } from "../core/clock.ts";
import { type Counter, type Gauge, type Histogram, MetricsRegistry } from "./metrics.ts";
import type { BusServer } from "./server.ts";
import type {
  BusCommitEvent,
  BusConnectionEvent,
  BusDispatchEvent,
  BusJobEvent,
  BusRegistrationEvent,
} from "./server_events.ts";

/** Options for {@linkcode BusMetrics}. */
export interface BusMetricsOptions {
  /**
   * Where the time of wait and run durations comes from.
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Whether to add the process's resident memory and CPU seconds.
   * @default {true}
   */
  process?: boolean;
}

/** Buckets for a job's wait and run time, in seconds (10 ms to a day). */
const JOB_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400];
/** Buckets for a store commit, in seconds (0.1 ms to 1 s). */
const COMMIT_BUCKETS = [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

interface Instruments {
  submitted: Counter;
  finished: Counter;
  evictions: Counter;
  requeues: Counter;
  dropped: Counter;
  waiting: Gauge;
  running: Gauge;
  schedulers: Gauge;
  slots: Gauge;
  connections: Gauge;
  waitTime: Histogram;
  runTime: Histogram;
  commitTime: Histogram;
  commitFailures: Counter;
}

/**
 * The metrics of one `BusServer`, in the Prometheus text format. Listens to its `job`,
 * `dispatch`, `registration` and `connection` events until {@linkcode BusMetrics.close}.
 *
 * @example
 * ```ts
 * import { BusServer } from "./server.ts";
 * import { BusMetrics } from "./bus_metrics.ts";
 * const bus = new BusServer({ port: 0 });
 * const metrics = new BusMetrics(bus);
 * console.log(metrics.render().includes("sched_jobs_running 0")); // true
 * metrics.close();
 * await bus.close();
 * ```
 */
export class BusMetrics {
  readonly #server: BusServer;
  readonly #clock: Clock;
  readonly #registry = new MetricsRegistry();
  readonly #m: Instruments;
  /** Since when each waiting job waits (ms), by id. */
  readonly #waitingSince = new Map<string, number>();
  /** Since when each running job runs (ms), by id. */
  readonly #runningSince = new Map<string, number>();
  /** Each connection's role (`none` until it registers), by connection id. */
  readonly #roles = new Map<string, string>();
  readonly #listeners: [string, (event: Event) => void][];

  /**
   * Starts counting.
   *
   * @param server The bus.
   * @param options See {@linkcode BusMetricsOptions}.
   */
  constructor(server: BusServer, options: BusMetricsOptions = {}) {
    this.#server = server;
    this.#clock = options.clock ?? systemClock;
    this.#m = instruments(this.#registry);
    this.#registry.onCollect(() => this.#collect());
    if (options.process ?? true) processMetrics(this.#registry);
    this.#listeners = [
      ["job", (e) => this.#onJob(e as BusJobEvent)],
      ["dispatch", (e) => this.#onDispatch(e as BusDispatchEvent)],
      ["registration", (e) => this.#onRegistration(e as BusRegistrationEvent)],
      ["connection", (e) => this.#onConnection(e as BusConnectionEvent)],
      ["commit", (e) => this.#onCommit(e as BusCommitEvent)],
    ];
    for (const [type, listener] of this.#listeners) server.addEventListener(type, listener);
  }

  /**
   * Counts one commit of a batch of store writes and how long it took (the bus's `commit`
   * events feed it).
   *
   * @param seconds The commit's duration in seconds.
   * @example
   * ```ts
   * import { BusServer } from "./server.ts";
   * import { BusMetrics } from "./bus_metrics.ts";
   * const bus = new BusServer({ port: 0 });
   * const metrics = new BusMetrics(bus, { process: false });
   * metrics.observeCommit(0.0015);
   * console.log(metrics.render().includes("sched_store_commit_seconds_count 1")); // true
   * metrics.close();
   * await bus.close();
   * ```
   */
  observeCommit(seconds: number): void {
    this.#m.commitTime.observe({}, seconds);
  }

  #onCommit(event: BusCommitEvent): void {
    if (event.ok) this.observeCommit(event.ms / 1000);
    else this.#m.commitFailures.inc({});
  }

  /**
   * The text `GET /metrics` answers (see `PROMETHEUS_CONTENT_TYPE`).
   *
   * @returns Every metric in the text exposition format 0.0.4.
   * @example
   * ```ts
   * import { BusServer } from "./server.ts";
   * import { BusMetrics } from "./bus_metrics.ts";
   * const bus = new BusServer({ port: 0 });
   * const metrics = new BusMetrics(bus, { process: false });
   * console.log(metrics.render().startsWith("# HELP sched_jobs_submitted_total")); // true
   * metrics.close();
   * await bus.close();
   * ```
   */
  render(): string {
    return this.#registry.render();
  }

  /**
   * Stops listening to the server. Idempotent.
   *
   * @example
   * ```ts
   * import { BusServer } from "./server.ts";
   * import { BusMetrics } from "./bus_metrics.ts";
   * const bus = new BusServer({ port: 0 });
   * new BusMetrics(bus).close();
   * await bus.close();
   * ```
   */
  close(): void {
    for (const [type, listener] of this.#listeners) {
      this.#server.removeEventListener(type, listener);
    }
  }

  #onJob({ job }: BusJobEvent): void {
    const now = this.#clock.now();
    const priority = { priority: String(job.priority) };
    switch (job.state) {
      case "queued":
        this.#m.submitted.inc(priority);
        this.#waitingSince.set(job.id, now);
        break;
      case "requeued":
        this.#m.requeues.inc();
        this.#runningSince.delete(job.id);
        this.#waitingSince.set(job.id, now);
        break;
      case "started":
        if (!this.#runningSince.has(job.id)) this.#runningSince.set(job.id, now);
        break;
      case "evicted":
        this.#m.evictions.inc();
        break;
    }
    if (job.final) {
      this.#m.finished.inc({ outcome: job.state });
      const started = this.#runningSince.get(job.id);
      if (started !== undefined) this.#m.runTime.observe({}, (now - started) / 1000);
      this.#runningSince.delete(job.id);
      this.#waitingSince.delete(job.id);
    }
  }

  #onDispatch({ dispatch }: BusDispatchEvent): void {
    const since = this.#waitingSince.get(dispatch.id);
    if (since === undefined) return;
    this.#waitingSince.delete(dispatch.id);
    this.#m.waitTime.observe({}, (this.#clock.now() - since) / 1000);
  }

  #onRegistration(event: BusRegistrationEvent): void {
    this.#roles.set(event.client, event.role);
  }

  #onConnection(event: BusConnectionEvent): void {
    if (event.open) this.#roles.set(event.client, "none");
    else this.#roles.delete(event.client);
  }

  #collect(): void {
    const status = this.#server.status();
    const health = this.#server.health();
    const m = this.#m;
    m.waiting.reset();
    for (const [priority, n] of Object.entries(status.queue.byPriority)) {
      m.waiting.set({ priority }, n);
    }
    let running = 0, used = 0, free = 0;
    for (const s of status.schedulers) {
      running += s.running.length;
      if (s.slots !== undefined && s.free !== undefined) {
        free += s.free;
        used += s.slots - s.free;
      }
    }
    m.running.set({}, running);
    m.slots.set({ state: "used" }, used);
    m.slots.set({ state: "free" }, free);
    m.schedulers.set({ protocol: "1" }, health.schedulers.seed);
    m.schedulers.set({ protocol: "2" }, health.schedulers.v2);
    const byRole: Record<string, number> = { producer: 0, scheduler: 0, monitor: 0, none: 0 };
    for (const role of this.#roles.values()) byRole[role] = (byRole[role] ?? 0) + 1;
    m.connections.reset();
    for (const [role, n] of Object.entries(byRole)) m.connections.set({ role }, n);
    m.dropped.inc({}, Math.max(0, status.droppedOutput - m.dropped.get()));
  }
}

function instruments(r: MetricsRegistry): Instruments {
  const byPriority = { labelNames: ["priority"] };
  return {
    submitted: r.counter("sched_jobs_submitted_total", {
      help: "Jobs the bus accepted, by priority.",
      ...byPriority,
    }),
    finished: r.counter("sched_jobs_finished_total", {
      help: "Jobs that reached a final state, by outcome (their final state).",
      labelNames: ["outcome"],
    }),
    evictions: r.counter("sched_job_evictions_total", { help: "Jobs evicted by a scheduler." }),
    requeues: r.counter("sched_job_requeues_total", { help: "Jobs put back in the queue." }),
    dropped: r.counter("sched_output_dropped_total", {
      help: "Pieces of live job output not sent to slow producers (events are never dropped).",
    }),
    commitFailures: r.counter("sched_store_commit_failures_total", {
      help: "Store commits that failed (their new jobs were rejected).",
    }),
    waiting: r.gauge("sched_jobs_waiting", { help: "Jobs waiting in the bus.", ...byPriority }),
    running: r.gauge("sched_jobs_running", { help: "Jobs at protocol 2 schedulers." }),
    schedulers: r.gauge("sched_schedulers_connected", {
      help: "Registered schedulers, by protocol.",
      labelNames: ["protocol"],
    }),
    slots: r.gauge("sched_slots", {
      help: "Slots of protocol 2 schedulers, by state (used, free).",
      labelNames: ["state"],
    }),
    connections: r.gauge("sched_connections", {
      help: "Open connections, by registered role (none: not registered yet).",
      labelNames: ["role"],
    }),
    waitTime: r.histogram("sched_job_wait_seconds", {
      help: "Time from entering the queue to being handed to a scheduler.",
      buckets: JOB_BUCKETS,
    }),
    runTime: r.histogram("sched_job_run_seconds", {
      help: "Time from start to the final state of jobs that started.",
      buckets: JOB_BUCKETS,
    }),
    commitTime: r.histogram("sched_store_commit_seconds", {
      help: "Duration of the store's commits.",
      buckets: COMMIT_BUCKETS,
    }),
  };
}

function processMetrics(r: MetricsRegistry): void {
  const memory = r.gauge("sched_process_resident_memory_bytes", {
    help: "Resident memory of the bus process.",
  });
  const cpu = r.counter("sched_process_cpu_seconds_total", {
    help: "User and system CPU time of the bus process.",
  });
  r.onCollect(() => {
    memory.set({}, Deno.memoryUsage().rss);
    const usage = process.cpuUsage();
    const seconds = (usage.user + usage.system) / 1e6;
    cpu.inc({}, Math.max(0, seconds - cpu.get()));
  });
}
