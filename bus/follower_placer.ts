/**
 * A follower bus's placement: it accepts jobs into the shared store, and hands everything that
 * decides where jobs go to the leader bus through the store's log (`cluster_mail.ts`): its
 * schedulers' registrations and reports, its producers' cancels and priority changes, an admin's
 * drains. The leader's answers and job frames come back the same way.
 *
 * @module
 */

import { knownState, knownStoredState, newBusJob, storedJobView } from "./bus_job.ts";
import type { ClusterMail } from "./cluster_mail.ts";
import type {
  BusJobView,
  DispatcherStats,
  DispatcherStatus,
  KnownJobState,
  OpResult,
  SchedulerPeer,
  SchedulerStatus,
  SubmitRequest,
  SubmitResult,
} from "./dispatcher_types.ts";
import type { JobPlacer } from "./job_placer.ts";
import type { JobStore, StoredJob } from "./job_store.ts";
import type { SchedulerEventMessage } from "./protocol.ts";
import { isFinalState } from "../scheduler/job.ts";

/** What {@linkcode FollowerPlacer} needs. */
export interface FollowerPlacerOptions {
  /** This bus's id in the cluster. */
  bus: string;
  /** The shared store (its writes tracked by the bus's commit gate). */
  store: JobStore;
  /** Stages a message to another bus (`"leader"`, a bus id, `"*"`). */
  mail: (to: string, message: ClusterMail) => void;
  /** Sends a message to a local scheduler (`reported`). */
  toScheduler: (client: string, message: { cmd: "reported"; ids: string[] }) => void;
  /** How long an answer from the leader may take before the request fails (ms). */
  askTimeoutMs?: number;
}

/** How many waiting jobs `/status` lists. */
const STATUS_JOBS = 100;

/**
 * The follower's {@linkcode JobPlacer}; see the module doc.
 *
 * @example
 * ```ts
 * import { FollowerPlacer } from "./follower_placer.ts";
 * import { SqliteStore } from "./sqlite_store.ts";
 * const store = new SqliteStore({ path: ":memory:" });
 * const mail: string[] = [];
 * const placer = new FollowerPlacer({
 *   bus: "b2", store, mail: (to, m) => mail.push(`${to} ${m.kind}`), toScheduler: () => {},
 * });
 * placer.schedulerEvent("c1", { cmd: "event", id: "j1", state: "started" });
 * console.log(mail); // ["leader report"]
 * placer.close();
 * store.close();
 * ```
 */
export class FollowerPlacer implements JobPlacer {
  readonly blocked = false;
  #options: FollowerPlacerOptions;
  #pending = new Map<string, ReturnType<typeof newBusJob>>();
  #schedulers = new Map<string, SchedulerPeer>();
  #asks = new Map<string, { resolve: (answer: ClusterMail & { kind: "answer" }) => void }>();
  #nextAsk = 1;
  #nextId = 1;
  #idPrefix = `b${crypto.randomUUID().slice(0, 8)}-`;
  #received = 0;
  /** Final reports handed to the leader, not yet stored by it: again to a new leader. */
  #unacked = new Map<string, Map<string, SchedulerEventMessage>>();
  /** What each local scheduler holds: its `running` at registration, plus the jobs sent to it,
   * minus those it ended (a new leader is told this, not what the store last said). */
  #holds = new Map<string, Set<string>>();

  /**
   * Creates the placer.
   *
   * @param options See {@linkcode FollowerPlacerOptions}.
   */
  constructor(options: FollowerPlacerOptions) {
    this.#options = options;
  }

  /** The local schedulers, by connection id. */
  get schedulers(): ReadonlyMap<string, SchedulerPeer> {
    return this.#schedulers;
  }

  /**
   * Recognises a known id (prepared here or in the store), else stages the new job in the
   * store; the leader queues it once it reads the commit.
   *
   * @param request The submission.
   * @returns As `Dispatcher.prepare`.
   */
  prepare(request: SubmitRequest): SubmitResult {
    const given = request.id;
    const known = given === undefined ? undefined : this.known(given);
    if (known) return { ok: true, id: given!, duplicate: true, ...known };
    let id = given;
    while (id === undefined || this.#pending.has(id)) {
      id = (request.idPrefix ?? "") + this.#idPrefix + this.#nextId++;
    }
    const job = newBusJob(id, given !== undefined, request.owner, request.payload, 0);
    this.#pending.set(id, job);
    this.#options.store.accept({
      id,
      owner: job.owner,
      givenId: job.givenId,
      payload: job.payload,
      seq: 0, // the shared store numbers it
      at: Date.now(),
    });
    return { ok: true, id, duplicate: false };
  }

  /** Whether a job is prepared and waits for its commit. */
  isPending(id: string): boolean {
    return this.#pending.has(id);
  }

  /** What the bus knows of a job (prepared here, or as the store has it). */
  known(id: string): KnownJobState | undefined {
    const pending = this.#pending.get(id);
    if (pending) return knownState(pending);
    const stored = this.#options.store.get(id);
    return stored && knownStoredState(stored);
  }

  /** The committed jobs are the leader's to queue: nothing here. */
  admit(ids: readonly string[]): (string | undefined)[] {
    for (const id of ids) if (this.#pending.delete(id)) this.#received++;
    return ids.map(() => undefined);
  }

  /** Forgets prepared jobs whose commit failed. */
  abandon(ids: readonly string[]): void {
    for (const id of ids) this.#pending.delete(id);
  }

  /** Asks the leader to cancel a job. */
  cancel(owner: string | undefined, id: string): Promise<OpResult> {
    return this.#ask({ op: "cancel", owner: owner ?? null, id }).then(toOpResult);
  }

  /** Asks the leader to change a job's priority. */
  setPriority(owner: string | undefined, id: string, priority: number): Promise<OpResult> {
    return this.#ask({ op: "set_priority", owner: owner ?? null, id, priority }).then(toOpResult);
  }

  /** Tells the leader about a local scheduler (with the jobs it still runs). */
  addScheduler(peer: SchedulerPeer, running: readonly string[] = []): void {
    this.#schedulers.set(peer.client, peer);
    this.#holds.set(peer.client, new Set(running));
    if (peer.protocol === 2) this.#register(peer, running);
  }

  /** Tells the leader that a local scheduler drains. */
  drainScheduler(client: string): void {
    this.#options.mail("leader", { kind: "drain", bus: this.#options.bus, client });
  }

  /** Asks the leader to drain the schedulers of a name, wherever they are. */
  drainSchedulerNamed(name: string): Promise<number> {
    return this.#ask({ op: "drain", owner: null, id: name }).then((answer) => answer.count ?? 0);
  }

  /** Tells the leader that a local scheduler left. */
  removeScheduler(client: string): void {
    this.#unacked.delete(client);
    this.#holds.delete(client);
    if (!this.#schedulers.delete(client)) return;
    this.#options.mail("leader", { kind: "gone", bus: this.#options.bus, client });
  }

  /** Hands a local scheduler's report to the leader (a final one again to a new leader). */
  schedulerEvent(client: string, event: SchedulerEventMessage): void {
    if (isFinalState(event.state)) this.#holds.get(client)?.delete(event.id);
    if (isFinalState(event.state)) {
      const reports = this.#unacked.get(client) ?? new Map();
      this.#unacked.set(client, reports.set(event.id, event));
    }
    this.#options.mail("leader", { kind: "report", bus: this.#options.bus, client, event });
  }

  /** Nothing to dispatch here. */
  pump(): void {}

  /** Where a job is, as the store has it. */
  job(id: string): BusJobView | undefined {
    const stored = this.#options.store.get(id);
    return stored && storedJobView(stored);
  }

  /** The leader knows why a job waits; a follower does not say. */
  waitingReason(): string | undefined {
    return undefined;
  }

  /** `/health` counts: jobs accepted here, local schedulers. */
  stats(): DispatcherStats {
    return {
      received: this.#received,
      delivered: 0,
      queued: this.#waiting().length,
      seedSchedulers: [...this.#schedulers.values()].filter((p) => p.protocol === 1).length,
      v2Schedulers: [...this.#schedulers.values()].filter((p) => p.protocol === 2).length,
    };
  }

  /** `/status`: the cluster's waiting jobs (from the store) and this bus's schedulers. */
  status(): DispatcherStatus {
    const unfinished = this.#options.store.unfinished(); // read once for the whole snapshot
    const waiting = this.#waiting(unfinished);
    const byPriority: Record<string, number> = {};
    for (const job of waiting) byPriority[job.priority] = (byPriority[job.priority] ?? 0) + 1;
    const jobs = waiting.slice(0, STATUS_JOBS).map((job) => ({
      id: job.id,
      priority: job.priority,
      waiting: null,
      ...(typeof job.payload.name === "string" ? { name: job.payload.name } : {}),
    }));
    return {
      queue: { length: waiting.length, byPriority, jobs },
      schedulers: [...this.#schedulers.values()].map((peer) =>
        this.#schedulerStatus(peer, unfinished)
      ),
      outcomes: {},
      recovering: {},
    };
  }

  /**
   * The final reports of a local scheduler that no leader has stored yet (for this bus, when it
   * becomes the leader: they are its to store).
   *
   * @param client The scheduler's connection id.
   * @returns The reports, oldest first.
   * @example
   * ```ts ignore
   * for (const event of follower.unackedReports("c3")) dispatcher.schedulerEvent("c3", event);
   * ```
   */
  unackedReports(client: string): SchedulerEventMessage[] {
    return [...this.#unacked.get(client)?.values() ?? []];
  }

  /** Fails the requests still waiting for the leader. Idempotent. */
  close(): void {
    for (const ask of this.#asks.values()) {
      ask.resolve({ kind: "answer", ask: "", ok: false, reason: "bus shutting down" });
    }
    this.#asks.clear();
  }

  /**
   * A message from the leader: a job or a cancel for a local scheduler, stored reports to
   * acknowledge, the answer to a request; a new leader: every local scheduler registers again.
   *
   * @param message The message.
   */
  deliver(message: ClusterMail): void {
    switch (message.kind) {
      case "job":
        this.#holds.get(message.client)?.add(message.id);
        this.#schedulers.get(message.client)?.sendJob(
          message.id,
          message.payload,
          message.attempt,
        );
        return;
      case "cancel":
        this.#schedulers.get(message.client)?.sendCancel(message.id, message.reason);
        return;
      case "reported":
        for (const id of message.ids) this.#unacked.get(message.client)?.delete(id);
        if (this.#schedulers.has(message.client)) {
          this.#options.toScheduler(message.client, { cmd: "reported", ids: message.ids });
        }
        return;
      case "answer": {
        const ask = this.#asks.get(message.ask);
        this.#asks.delete(message.ask);
        ask?.resolve(message);
        return;
      }
      case "leader":
        for (const peer of this.#schedulers.values()) {
          if (peer.protocol !== 2) continue;
          const reports = this.#unacked.get(peer.client) ?? new Map();
          const holds = this.#holds.get(peer.client) ?? new Set<string>();
          this.#register(peer, [...new Set([...holds, ...reports.keys()])]);
          for (const event of reports.values()) {
            const bus = this.#options.bus;
            this.#options.mail("leader", { kind: "report", bus, client: peer.client, event });
          }
        }
        return;
    }
  }

  #register(peer: SchedulerPeer, running: readonly string[]): void {
    this.#options.mail("leader", {
      kind: "register",
      bus: this.#options.bus,
      client: peer.client,
      name: peer.name,
      slots: peer.slots,
      labels: peer.labels && { ...peer.labels },
      commands: peer.commands && [...peer.commands],
      running: [...running],
    });
  }

  #ask(
    request: { op: "cancel" | "set_priority" | "drain"; owner: string | null; id: string } & {
      priority?: number;
    },
  ): Promise<ClusterMail & { kind: "answer" }> {
    const ask = `${this.#options.bus}:${this.#nextAsk++}`;
    const { promise, resolve } = Promise.withResolvers<ClusterMail & { kind: "answer" }>();
    this.#asks.set(ask, { resolve });
    this.#options.mail("leader", { kind: "op", bus: this.#options.bus, ask, ...request });
    const timer = setTimeout(() => {
      if (!this.#asks.delete(ask)) return;
      resolve({ kind: "answer", ask, ok: false, reason: "no answer from the leader bus" });
    }, this.#options.askTimeoutMs ?? 10_000);
    return promise.finally(() => clearTimeout(timer));
  }

  /** The waiting jobs of the cluster, in dispatch order (from the store). */
  #waiting(unfinished = this.#options.store.unfinished()): StoredJob[] {
    return unfinished
      .filter((job) => !job.atScheduler)
      .sort((a, b) => a.priority - b.priority || a.seq - b.seq);
  }

  #schedulerStatus(peer: SchedulerPeer, unfinished: StoredJob[]): SchedulerStatus {
    const running = unfinished
      .filter((job) => job.atScheduler && job.scheduler === peer.name)
      .map((job) => ({
        id: job.id,
        priority: job.priority,
        state: job.state,
        since: job.startedAt ?? job.submittedAt,
      }));
    return {
      client: peer.client,
      name: peer.name,
      protocol: peer.protocol,
      slots: peer.protocol === 2 ? peer.slots : undefined,
      free: peer.protocol === 2 ? Math.max(0, peer.slots - running.length) : undefined,
      draining: false,
      running,
    };
  }
}

function toOpResult(answer: ClusterMail & { kind: "answer" }): OpResult {
  return answer.ok ? { ok: true } : { ok: false, reason: answer.reason ?? "refused" };
}
