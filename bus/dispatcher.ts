/**
 * The bus's delivery policy, without sockets: the job table, the waiting queue, the schedulers
 * and their credits, and the rules that decide which scheduler gets which job (exactly-once with
 * cluster-wide preemption, or the seed's broadcast).
 *
 * @module
 */

import { type Clock, systemClock } from "../core/clock.ts";
import { type CommandSpec, isCommandPayload } from "../scheduler/command_spec.ts";
import { BusStateError } from "./errors.ts";
import { JobQueue } from "./job_queue.ts";
import { RecoveringJobs } from "./recovering_jobs.ts";
import { dispatcherStatus } from "./dispatcher_status.ts";
import type { JobStore } from "./job_store.ts";
import type { JobPlacer } from "./job_placer.ts";
import { SqliteStore } from "./sqlite_store.ts";
import { type PooledScheduler, SchedulerPool } from "./scheduler_pool.ts";
import {
  type BusJob,
  busJobEvent,
  type EventExtra,
  knownState,
  knownStoredState,
  newBusJob,
  restoredBusJob,
  storedJobView,
} from "./bus_job.ts";
import { ANY_PLACEMENT, placementFits } from "./placement.ts";
import { RetryBackoff, retryDelayMs, retryReason } from "./retry_backoff.ts";
import { type BusJobState, type SchedulerEventMessage } from "./protocol.ts";
import type {
  BusJobView,
  DispatcherJobEvent,
  DispatcherOptions,
  DispatcherStats,
  DispatcherStatus,
  DispatchInfo,
  KnownJobState,
  OpResult,
  SchedulerPeer,
  SubmitRequest,
  SubmitResult,
} from "./dispatcher_types.ts";

export type * from "./dispatcher_types.ts";

type Job = BusJob;
type Sched = PooledScheduler<Job>;

/** The reason of a cancel its owner asked for (`cancel` to the scheduler, the final event). */
const OWNER_CANCEL = "cancelled by its owner";

/**
 * Decides which scheduler gets which job.
 *
 * Exactly-once mode: a job goes only to a scheduler that matches it (its `requires` labels and,
 * for a command job, the scheduler's allow-list: see {@linkcode placementFits}): to the matching
 * v2 scheduler with the most free slots, else to a seed scheduler (round-robin), else — when it
 * is strictly more urgent than the least urgent job running on a matching scheduler — to the
 * scheduler running that job (latest started among equals), which evicts it. Evicted jobs and
 * jobs of lost schedulers are requeued in their original place. Waiting jobs are grouped by
 * placement: a job nothing can take now holds up no job of another placement. A failed command
 * job with `retries` left comes back after a backoff. Broadcast mode: every job to every
 * matching scheduler. See `docs/protocol.md`.
 *
 * @example Two jobs, one v2 scheduler with one slot
 * ```ts
 * import { Dispatcher, type SchedulerPeer } from "./dispatcher.ts";
 * const sent: string[] = [];
 * const peer: SchedulerPeer = {
 *   client: "c1", name: "a", protocol: 2, slots: 1, canSend: () => true,
 *   sendJob: (id) => sent.push(id), sendCancel: () => {},
 * };
 * const dispatcher = new Dispatcher();
 * dispatcher.addScheduler(peer);
 * dispatcher.submit({ owner: "p", id: "j1", payload: { priority: 5, runtime: 1 } });
 * dispatcher.submit({ owner: "p", id: "j2", payload: { priority: 7, runtime: 1 } });
 * console.log(sent, dispatcher.queueLength); // ["j1"] 1
 * dispatcher.schedulerEvent("c1", { cmd: "event", id: "j1", state: "succeeded" });
 * console.log(sent); // ["j1", "j2"]
 * ```
 */
export class Dispatcher implements JobPlacer {
  #queue: JobQueue<Job>;
  #jobs = new Map<string, Job>(); // unfinished jobs (final ones are in the store only)
  #pending = new Map<string, Job>(); // accepted, not yet committed nor admitted
  #store: JobStore;
  #recovering: RecoveringJobs<Job>; // at schedulers when the bus restarted
  #maxQueue: number;
  #graceMs: number;
  #lostFenceMs: number;
  #scheds = new SchedulerPool<Job>();
  #idPrefix = `b${crypto.randomUUID().slice(0, 8)}-`; // bus-assigned ids: prefix + counter
  #nextId = 1;
  #broadcast: boolean;
  #clock: Clock;
  #onJobEvent: (event: DispatcherJobEvent) => void;
  #onDispatch: (info: DispatchInfo) => void;
  #onNotice: (message: string) => void;
  #onBlocked: () => void;
  #backoff: RetryBackoff<Job>; // failed jobs waiting to be retried
  #seq = 0;
  #received = 0;
  #delivered = 0;
  #outcomes = new Map<string, number>();
  #blocked = false;
  #skipped = false; // a scheduler's full send buffer held a job back in this round
  #maxPerOwner: number | undefined;
  #unfinished = new Map<string, number>(); // unfinished jobs by owner, with maxQueuePerOwner

  /**
   * Creates a Dispatcher.
   *
   * @param options See {@linkcode DispatcherOptions}.
   * @throws {RangeError} If `maxQueue`, `maxQueuePerOwner` or `recoverGraceMs` is out of range.
   */
  constructor(options: DispatcherOptions = {}) {
    this.#maxQueue = options.maxQueue ?? 100_000;
    this.#queue = new JobQueue<Job>({
      maxLength: this.#maxQueue,
      classOf: (job) => job.placementKey,
    });
    const grace = options.recoverGraceMs ?? 30_000;
    if (!Number.isFinite(grace) || grace < 0) {
      throw new RangeError(
        `Cannot create Dispatcher: 'recoverGraceMs' must be a number >= 0, got ${grace}`,
      );
    }
    const perOwner = this.#maxPerOwner = options.maxQueuePerOwner;
    if (perOwner !== undefined && (!Number.isInteger(perOwner) || perOwner < 1)) {
      throw new RangeError(
        `Cannot create Dispatcher: 'maxQueuePerOwner' must be a positive integer, got ${perOwner}`,
      );
    }
    this.#broadcast = options.broadcast ?? false;
    this.#clock = options.clock ?? systemClock;
    this.#backoff = new RetryBackoff(this.#clock);
    this.#onJobEvent = options.onJobEvent ?? (() => {});
    this.#onDispatch = options.onDispatch ?? (() => {});
    this.#onNotice = options.onNotice ?? (() => {});
    this.#onBlocked = options.onBlocked ?? (() => {});
    this.#store = options.store ?? new SqliteStore({ path: ":memory:" });
    this.#recovering = new RecoveringJobs(this.#clock, (jobs) => this.#recoveryExpired(jobs));
    this.#graceMs = grace;
    this.#lostFenceMs = options.lostFenceMs ?? 1000;
    this.#recover(grace);
  }

  /** The store the dispatcher writes every change to. */
  get store(): JobStore {
    return this.#store;
  }

  /** How many recovered jobs wait for their scheduler to come back (after a bus restart). */
  get recovering(): number {
    return this.#recovering.size;
  }

  /** How many jobs wait in the bus. */
  get queueLength(): number {
    return this.#queue.length;
  }

  /**
   * Whether the last dispatch round left placeable jobs waiting because a scheduler's send
   * buffer was full: the caller should call {@linkcode Dispatcher.pump} again a little later.
   */
  get blocked(): boolean {
    return this.#blocked;
  }

  /**
   * Accepts a job into the bus queue (or recognises a known id), then dispatches: at once, with
   * no commit in between ({@linkcode Dispatcher.prepare} then {@linkcode Dispatcher.admit}; the
   * bus commits between the two).
   *
   * @param request Owner, optional id, validated payload.
   * @returns Accepted (with the id; for a duplicate, the job's current or final state) or
   * rejected "queue full" (or "queue full for owner X", see `maxQueuePerOwner`).
   */
  submit(request: SubmitRequest): SubmitResult {
    const result = this.prepare(request);
    if (!result.ok || result.duplicate) return result;
    const waiting = this.admit([result.id])[0];
    return waiting === undefined ? result : { ...result, waiting };
  }

  /**
   * The first half of a submission: recognises a known id (live, pending or in the store), or
   * checks the bounds and stages the new job in the store. The job is not in the queue until
   * {@linkcode Dispatcher.admit} (after the store's commit) or forgotten by
   * {@linkcode Dispatcher.abandon} (the commit failed).
   *
   * @param request Owner, optional id, validated payload.
   * @returns As {@linkcode Dispatcher.submit}, without `waiting`.
   */
  prepare(request: SubmitRequest): SubmitResult {
    const given = request.id;
    const known = given === undefined ? undefined : this.known(given);
    if (known) return { ok: true, id: given!, duplicate: true, ...known };
    if (this.#queue.length + this.#pending.size >= this.#maxQueue) {
      return { ok: false, reason: "queue full" };
    }
    if (this.#ownerFull(request.owner)) {
      return { ok: false, reason: `queue full for owner ${request.owner}` };
    }
    let id = given;
    while (id === undefined || this.#jobs.has(id) || this.#pending.has(id)) {
      id = (request.idPrefix ?? "") + this.#idPrefix + this.#nextId++;
    }
    const job = newBusJob(id, given !== undefined, request.owner, request.payload, this.#seq++);
    this.#pending.set(id, job);
    this.#countOwner(request.owner, 1);
    this.#store.accept({
      id,
      owner: job.owner,
      givenId: job.givenId,
      payload: job.payload,
      seq: job.seq,
      at: this.#clock.now(),
    });
    return { ok: true, id, duplicate: false };
  }

  /**
   * What the bus knows of a job: live, prepared or in the store.
   *
   * @param id The job (bus-wide id).
   * @returns Its state (as a duplicate submission is answered), or undefined if unknown.
   */
  known(id: string): KnownJobState | undefined {
    const live = this.#jobs.get(id) ?? this.#pending.get(id);
    if (live) return knownState(live);
    const stored = this.#store.get(id);
    return stored && knownStoredState(stored);
  }

  /**
   * Whether a job is prepared and waits for its commit.
   *
   * @param id The job.
   * @returns True between {@linkcode Dispatcher.prepare} and `admit` or `abandon`.
   */
  isPending(id: string): boolean {
    return this.#pending.has(id);
  }

  /**
   * The second half of a submission, once the store has committed the jobs: they enter the
   * queue (each emits `queued`), then one dispatch round.
   *
   * @param ids Prepared jobs (others are ignored).
   * @returns For each id, why it waits with nothing to run it, or undefined (see
   * {@linkcode Dispatcher.waitingReason}; `"no scheduler connected"` when none is).
   */
  admit(ids: readonly string[]): (string | undefined)[] {
    const jobs: (Job | undefined)[] = ids.map((id) => this.#pending.get(id));
    const seqFromStore = this.#store.assignsJobSeq === true;
    for (const job of jobs) {
      if (!job) continue;
      this.#pending.delete(job.id);
      if (seqFromStore) job.seq = this.#store.get(job.id)?.seq ?? job.seq; // the cluster's order
      this.#received++;
      this.#jobs.set(job.id, job);
      this.#emit(job, "queued");
      this.#queue.requeue(job); // within the bound: prepare counted it
    }
    this.pump();
    return jobs.map((job) =>
      job === undefined || !this.#queue.has(job)
        ? undefined
        : this.#scheds.size === 0
        ? "no scheduler connected"
        : this.#scheds.waitingReason(job.placement)
    );
  }

  /**
   * Jobs another bus accepted and committed to the shared store (this bus leads the cluster):
   * they enter the queue as if accepted here (each emits `queued`), then one dispatch round.
   * Ids already known, final or unknown to the store are skipped.
   *
   * @param ids The jobs.
   */
  admitStored(ids: readonly string[]): void {
    for (const id of ids) {
      if (this.#jobs.has(id) || this.#pending.has(id)) continue;
      const stored = this.#store.get(id);
      if (!stored || stored.final) continue;
      const job = restoredBusJob(stored);
      this.#received++;
      this.#countOwner(job.owner, 1);
      this.#jobs.set(id, job);
      this.#emit(job, "queued");
      this.#queue.requeue(job);
    }
    this.pump();
  }

  /**
   * Emits `queued` for waiting jobs no bus announced yet (a cluster's new leader: jobs that
   * followers accepted while no bus led).
   *
   * @param ids The jobs (those not waiting in the queue are skipped).
   */
  announce(ids: readonly string[]): void {
    for (const id of ids) {
      const job = this.#jobs.get(id);
      if (job && this.#queue.has(job)) this.#emit(job, "queued");
    }
  }

  /**
   * Forgets prepared jobs whose commit failed (they were answered `rejected`).
   *
   * @param ids Prepared jobs (others are ignored).
   */
  abandon(ids: readonly string[]): void {
    for (const id of ids) {
      const job = this.#pending.get(id);
      if (!job) continue;
      this.#pending.delete(id);
      this.#countOwner(job.owner, -1);
    }
  }

  /**
   * Why a job waits in the bus with nothing to run it.
   *
   * @param id The job.
   * @returns `"no scheduler connected"`, `"no scheduler with gpu=a100"`, `"no scheduler allows
   * command ffmpeg"`, `"no scheduler with gpu=a100 allows command ffmpeg"`; undefined when it
   * waits its turn (some connected scheduler matches it), or is not waiting in the bus queue.
   * @example
   * ```ts
   * import { Dispatcher } from "./dispatcher.ts";
   * const dispatcher = new Dispatcher();
   * dispatcher.submit({ owner: "p", id: "j1", payload: { priority: 5, command: ["ffmpeg"] } });
   * console.log(dispatcher.waitingReason("j1")); // no scheduler connected
   * ```
   */
  waitingReason(id: string): string | undefined {
    const job = this.#jobs.get(id);
    if (!job || !this.#queue.has(job)) return undefined;
    return this.#scheds.waitingReason(job.placement);
  }

  /**
   * A producer cancels one of its jobs: removed at once if waiting; a v2 scheduler that has it
   * is told to stop (the final `cancelled` comes from it).
   *
   * @param owner The asking producer's owner identity (`undefined`: an admin, any owner's).
   * @param id The job.
   * @returns Ok, or why not (unknown, not yours, already final).
   */
  cancel(owner: string | undefined, id: string): OpResult {
    const job = this.#ownJob(owner, id, "cancel");
    if (!("id" in job)) return job;
    if (this.#queue.remove(job) || this.#backoff.stop(job)) {
      const result = job.lastResult;
      this.#finish(job, "cancelled", { reason: OWNER_CANCEL, result });
      return { ok: true };
    }
    if (this.#recovering.remove(job)) { // its scheduler, back, is told "unknown job"
      this.#finish(job, "cancelled", { reason: `${OWNER_CANCEL} (its scheduler was away)` });
      return { ok: true };
    }
    if (!job.scheduler) return { ok: false, reason: `job already ${job.state}` }; // final
    if (!job.cancelRequested) {
      job.cancelRequested = true;
      job.scheduler.peer.sendCancel(id, OWNER_CANCEL);
    }
    return { ok: true };
  }

  /**
   * A producer changes the priority of one of its jobs still waiting in the bus queue.
   *
   * @param owner The asking producer's owner identity (`undefined`: an admin, any owner's).
   * @param id The job.
   * @param priority The new priority (validated by the caller).
   * @returns Ok, or why not (unknown, not yours, not waiting).
   */
  setPriority(owner: string | undefined, id: string, priority: number): OpResult {
    const job = this.#ownJob(owner, id, "set_priority");
    if (!("id" in job)) return job;
    if (this.#backoff.has(job)) job.priority = priority; // out of the queue for a while
    else if (!this.#queue.setPriority(job, priority)) {
      return { ok: false, reason: `job is not waiting in the bus queue (state ${job.state})` };
    }
    job.payload = { ...job.payload, priority };
    this.#store.setPriority(id, priority);
    this.pump();
    return { ok: true };
  }

  /**
   * Adds a scheduler; a reconnecting v2 scheduler reports the jobs it still runs: those waiting
   * in the bus queue (or still attached to a connection with its name, or found at a scheduler
   * of its name when the bus restarted) are re-attached to it, the others are cancelled at it
   * (`"reassigned"`, or `"unknown job"`). Jobs a restarted bus found at a scheduler of this name
   * that it does not report are requeued.
   *
   * @param peer The scheduler.
   * @param running Ids of jobs it still runs (protocol 2).
   * @throws {BusStateError} If a scheduler with the same connection id is already there.
   */
  addScheduler(peer: SchedulerPeer, running: readonly string[] = []): void {
    if (this.#scheds.get(peer.client)) {
      throw new BusStateError(
        `Cannot add scheduler: connection ${peer.client} is already registered`,
      );
    }
    const sched = this.#scheds.add(peer);
    if (peer.protocol === 2) {
      for (const id of running) this.#reclaim(sched, id);
      for (const job of this.#recovering.rest(peer.name)) {
        this.#endOrRequeue(job, `scheduler ${peer.name} came back without it`);
      }
    }
    this.pump();
  }

  /**
   * A v2 scheduler is shutting down: it gets no more jobs, neither into free slots nor to
   * preempt one of its jobs. What it still has comes back when it reports or disconnects.
   *
   * @param client The scheduler's connection id.
   */
  drainScheduler(client: string): void {
    const sched = this.#scheds.get(client);
    if (!sched || sched.draining) return;
    sched.draining = true;
    this.#onNotice(`scheduler ${sched.peer.name} drains: no more jobs for it`);
  }

  /**
   * An admin drains a scheduler by name: every connection with that name gets no more jobs
   * (see {@linkcode Dispatcher.drainScheduler}).
   *
   * @param name The scheduler's name.
   * @returns How many scheduler connections have that name (0: none, nothing done).
   * @example
   * ```ts
   * import { Dispatcher } from "./dispatcher.ts";
   * const dispatcher = new Dispatcher();
   * console.log(dispatcher.drainSchedulerNamed("node-a")); // 0
   * ```
   */
  drainSchedulerNamed(name: string): number {
    const named = this.#scheds.all().filter((sched) => sched.peer.name === name);
    for (const sched of named) this.drainScheduler(sched.peer.client);
    return named.length;
  }

  /**
   * Removes a scheduler (disconnected or silent): its unfinished jobs are requeued (or
   * cancelled, if their producer had asked); with `recover`, they stay its own, by name, for the
   * recovery grace (its connection was lost with a bus of the cluster, not by itself).
   *
   * @param client The scheduler's connection id; unknown ids are ignored.
   * @param options `recover`: keep its jobs for it (see {@linkcode RecoveringJobs}).
   */
  removeScheduler(client: string, options: { recover?: boolean } = {}): void {
    const sched = this.#scheds.remove(client);
    if (!sched) return;
    if (options.recover) { // its bus died: it may come back through another within the grace
      for (const job of [...sched.jobs]) {
        this.#detach(job);
        this.#recovering.add(sched.peer.name, job);
      }
      this.#recovering.startGrace(this.#graceMs);
      this.pump();
      return;
    }
    // A scheduler that said `drain` left on purpose; any other was lost: its jobs run again
    // only after `lostFenceMs`, the time for its reaper to kill what it ran.
    const why = sched.draining ? "scheduler stopped" : "scheduler lost";
    const fence = sched.draining ? 0 : this.#lostFenceMs;
    for (const job of [...sched.jobs].sort((a, b) => a.seq - b.seq)) {
      this.#detach(job);
      if (fence === 0 || job.cancelRequested) this.#endOrRequeue(job, why);
      else this.#requeueAfter(job, why, fence);
    }
    this.pump();
  }

  /**
   * Takes a v2 scheduler's report about a job it was given, updates the job, forwards the event
   * and dispatches. Reports about jobs not (or no longer) attached to that scheduler are ignored.
   *
   * @param client The reporting scheduler's connection id.
   * @param event The validated report.
   */
  schedulerEvent(client: string, event: SchedulerEventMessage): void {
    const sched = this.#scheds.get(client);
    const job = this.#jobs.get(event.id);
    const at = event.at ?? this.#clock.now();
    const extra = {
      at,
      scheduler: sched?.peer.name,
      result: event.result,
      reason: event.reason,
    };
    if (!sched || !job) {
      const stored = sched && this.#store.get(event.id);
      if (stored?.state === "delivered") { // broadcast: final for the bus; pass reports on
        this.#record(busJobEvent(restoredBusJob(stored), event.state, extra, at));
        return;
      }
      this.#onNotice(`ignored ${event.state} of unknown job ${event.id} from ${client}`);
      return;
    }
    if (job.scheduler !== sched) {
      this.#onNotice(
        `ignored ${event.state} of job ${event.id} not attached to ${sched.peer.name}`,
      );
      return;
    }
    switch (event.state) {
      case "started":
        job.startedAt = at;
        break;
      case "suspended":
        this.#scheds.suspend(job, true);
        job.preemptor = undefined;
        break;
      case "resumed":
        this.#scheds.suspend(job, false);
        break;
      case "evicted":
        this.#detach(job);
        if (event.requeue === false) this.#finish(job, "evicted", extra); // killed for good
        else {
          this.#emit(job, "evicted", extra);
          if (job.cancelRequested) {
            this.#finish(job, "cancelled", { reason: OWNER_CANCEL });
          } else this.#requeue(job, event.reason ?? "evicted");
        }
        this.pump();
        return;
      case "failed":
      case "timed_out":
        this.#detach(job);
        if (!this.#retryLater(job, event.state, extra)) this.#finish(job, event.state, extra);
        this.pump();
        return;
      case "succeeded":
      case "cancelled":
        this.#detach(job);
        this.#finish(job, event.state, extra);
        this.pump();
        return;
    }
    job.state = event.state;
    this.#emit(job, event.state, extra);
    if (event.state === "suspended") this.pump();
  }

  /**
   * Hands waiting jobs to schedulers while the policy allows. Called after every change; call
   * it again when {@linkcode Dispatcher.blocked} says a full send buffer held jobs back.
   */
  pump(): void {
    this.#skipped = false;
    this.#queue.drain((job) => this.#deliver(job));
    this.#blocked = this.#skipped && this.#queue.length > 0;
  }

  /**
   * Stops the retry timers of jobs waiting out a backoff (they stay where they are: a job is
   * still known and can be cancelled). Idempotent; call it when the bus shuts down.
   */
  close(): void {
    this.#backoff.close();
    this.#recovering.close();
  }

  /**
   * Looks a job up.
   *
   * @param id The job id.
   * @returns Where the job is (a final one: as the store has it), or undefined if unknown or
   * pruned.
   */
  job(id: string): BusJobView | undefined {
    const job = this.#jobs.get(id);
    if (!job) {
      const stored = this.#store.get(id);
      return stored && storedJobView(stored);
    }
    return {
      id: job.id,
      owner: job.owner,
      priority: job.priority,
      state: job.state,
      scheduler: job.scheduler?.peer.name,
      attempts: job.attempt,
    };
  }

  /**
   * The ids waiting in the bus queue, next first (O(n log n): for status and tests).
   *
   * @returns Job ids in queue order.
   */
  queuedIds(): string[] {
    return this.#queue.toArray().map((job) => job.id);
  }

  /**
   * Counts for `/health`.
   *
   * @returns Received, delivered, queued jobs and connected schedulers by protocol.
   */
  stats(): DispatcherStats {
    const seed = this.#scheds.seedCount;
    return {
      received: this.#received,
      delivered: this.#delivered,
      queued: this.#queue.length,
      seedSchedulers: seed,
      v2Schedulers: this.#scheds.size - seed,
    };
  }

  /**
   * The snapshot for `/status`.
   *
   * @returns The queue by priority, each scheduler and its jobs, outcome counts.
   */
  status(): DispatcherStatus {
    return dispatcherStatus({
      queue: this.#queue,
      scheds: this.#scheds,
      outcomes: this.#outcomes,
      recovering: this.#recovering.counts(),
    });
  }

  /** The live job of that owner (undefined: any), or why not; a final one is named as such. */
  #ownJob(
    owner: string | undefined,
    id: string,
    op: "cancel" | "set_priority",
  ): Job | { ok: false; reason: string } {
    const job = this.#jobs.get(id) ?? this.#store.get(id);
    if (!job) return { ok: false, reason: "unknown job" };
    if (owner !== undefined && job.owner !== owner) return { ok: false, reason: "not your job" };
    if (this.#jobs.has(id)) return job as Job;
    return { // final, in the store only
      ok: false,
      reason: op === "cancel"
        ? `job already ${job.state}`
        : `job is not waiting in the bus queue (state ${job.state})`,
    };
  }

  #reclaim(sched: Sched, id: string): void {
    const job = this.#jobs.get(id);
    if (job && this.#recovering.take(sched.peer.name, job)) { // found there by a restarted bus
      const suspended = job.state === "suspended";
      this.#scheds.attach(job, sched);
      if (suspended) this.#scheds.suspend(job, true);
      this.#onNotice(`re-attached job ${id} to ${sched.peer.name} (found there at restart)`);
      if (job.cancelRequested) sched.peer.sendCancel(id, OWNER_CANCEL);
      return;
    }
    const from = job?.scheduler;
    const waits = job !== undefined && (this.#queue.has(job) || this.#backoff.has(job));
    if (job && (waits || (from && from.peer.name === sched.peer.name))) {
      this.#queue.remove(job);
      this.#backoff.stop(job);
      if (from) { // a stale connection of this scheduler, or a second live one with its name
        this.#scheds.unattach(job);
        from.peer.sendCancel(id, "reassigned");
      }
      job.startedAt = this.#clock.now();
      this.#scheds.attach(job, sched);
      this.#onNotice(`re-attached job ${id} to ${sched.peer.name}`);
      if (job.cancelRequested) sched.peer.sendCancel(id, OWNER_CANCEL);
      else if (!from) {
        job.state = "started";
        this.#emit(job, "started", { scheduler: sched.peer.name, reason: "reattached" });
      }
      return;
    }
    const reason = job || this.#store.get(id) ? "reassigned" : "unknown job";
    this.#onNotice(`cancelling job ${id} at ${sched.peer.name}: ${reason}`);
    sched.peer.sendCancel(id, reason);
  }

  /**
   * The delivery policy, the one place where the modes differ: hands a waiting job (the next
   * of its placement class) to every matching scheduler (broadcast) or to the one the
   * exactly-once policy picks (see the class doc).
   *
   * @returns Whether the job went out; false when it must wait.
   */
  #deliver(job: Job): boolean {
    const fits = job.placement === ANY_PLACEMENT
      ? anywhere
      : (sched: Sched): boolean => placementFits(sched.peer, job.placement);
    if (fits !== anywhere && !this.#scheds.some(fits)) return false; // a quick no, most often
    if (this.#broadcast) {
      const all = this.#scheds.all().filter(fits);
      if (all.length === 0 || !all.every((sched) => this.#canSend(sched))) return false;
      this.#queue.remove(job);
      for (const sched of all) this.#handOver(job, sched);
      this.#finish(job, "delivered");
      return true;
    }
    const canSend = (sched: Sched): boolean => fits(sched) && this.#canSend(sched);
    const target = this.#scheds.freest(canSend) ?? this.#scheds.nextSeed(canSend);
    const victim = target ? undefined : this.#victimFor(job.priority, fits);
    const to = target ?? victim?.scheduler;
    if (!to) return false;
    this.#queue.remove(job);
    this.#assign(job, to, victim);
    return true;
  }

  /** Whether a scheduler can take a frame now; notes it when one cannot (see `blocked`). */
  #canSend(sched: Sched): boolean {
    if (sched.peer.canSend()) return true;
    this.#skipped = true;
    return false;
  }

  /**
   * The job to evict for one of `priority` on a scheduler that `fits` (see the class doc), if
   * that scheduler can take a frame now.
   */
  #victimFor(priority: number, fits: (sched: Sched) => boolean): Job | undefined {
    const victim = this.#scheds.victimFor(
      priority,
      (job) =>
        !this.#marked(job) && !job.cancelRequested && !job.scheduler!.draining &&
        fits(job.scheduler!),
    );
    return victim && this.#canSend(victim.scheduler!) ? victim : undefined;
  }

  /**
   * Whether a preemptor is on its way to evict this job: one was sent to the job's scheduler
   * and has not started there yet. A preemptor that was lost with its connection, or that
   * started in a slot freed meanwhile, leaves the job open to preemption again.
   */
  #marked(job: Job): boolean {
    const by = job.preemptor;
    return by !== undefined && by.scheduler === job.scheduler &&
      (by.state === "dispatched" || by.state === "queued");
  }

  #assign(job: Job, sched: Sched, victim: Job | undefined): void {
    job.attempt++;
    if (sched.peer.protocol === 1) {
      this.#handOver(job, sched);
      this.#finish(job, "delivered", { scheduler: sched.peer.name });
      return;
    }
    if (victim) victim.preemptor = job;
    job.state = "dispatched";
    job.startedAt = this.#clock.now();
    this.#scheds.attach(job, sched);
    this.#store.dispatched(job.id, sched.peer.name, job.attempt);
    this.#handOver(job, sched, victim?.id);
  }

  #handOver(job: Job, sched: Sched, preempting?: string): void {
    this.#delivered++;
    sched.peer.sendJob(job.id, job.payload, Math.max(job.attempt, 1));
    const info: DispatchInfo = {
      id: job.id,
      priority: job.priority,
      scheduler: sched.peer.name,
      client: sched.peer.client,
    };
    if (preempting !== undefined) info.preempting = preempting;
    this.#onDispatch(info);
  }

  #detach(job: Job): void {
    this.#scheds.unattach(job);
    job.preemptor = undefined;
  }

  /**
   * A failed or timed-out command job with retries left: emits `requeued` and puts it back in
   * the queue after its backoff (1 s, 2 s, 4 s, ... at most 60 s). Not for a job that could not
   * start (`result.startError`), nor one its producer cancelled.
   *
   * @returns Whether it will be retried (false: the failure is final).
   */
  #retryLater(job: Job, state: "failed" | "timed_out", extra: EventExtra): boolean {
    const payload = job.payload;
    const retries = isCommandPayload(payload) ? (payload as CommandSpec).retries ?? 0 : 0;
    const result = extra.result;
    if (job.failures >= retries || job.cancelRequested || result?.startError !== undefined) {
      return false;
    }
    job.failures++;
    job.lastResult = result;
    this.#store.retried(job.id, job.failures, result);
    const reason = retryReason(job.failures, retries, { ...extra, state });
    job.state = "requeued";
    this.#backoff.wait(job, retryDelayMs(job.failures), () => {
      this.#queue.requeue(job);
      this.pump();
      if (this.#blocked) this.#onBlocked();
    });
    this.#emit(job, "requeued", { ...extra, reason });
    return true;
  }

  #requeue(job: Job, reason: string): void {
    job.state = "requeued";
    this.#queue.requeue(job);
    this.#emit(job, "requeued", { reason });
  }

  /** `requeued` now, back in the queue after `ms` (cancel and priority changes work meanwhile). */
  #requeueAfter(job: Job, reason: string, ms: number): void {
    job.state = "requeued";
    this.#backoff.wait(job, ms, () => {
      this.#queue.requeue(job);
      this.pump();
      if (this.#blocked) this.#onBlocked();
    });
    this.#emit(job, "requeued", { reason });
  }

  /** Whether the owner has `maxQueuePerOwner` unfinished jobs already. */
  #ownerFull(owner: string): boolean {
    return this.#maxPerOwner !== undefined &&
      (this.#unfinished.get(owner) ?? 0) >= this.#maxPerOwner;
  }

  #countOwner(owner: string, delta: 1 | -1): void {
    if (this.#maxPerOwner === undefined) return;
    const count = (this.#unfinished.get(owner) ?? 0) + delta;
    if (count > 0) this.#unfinished.set(owner, count);
    else this.#unfinished.delete(owner);
  }

  #finish(job: Job, state: BusJobState, extra: EventExtra = {}): void {
    this.#countOwner(job.owner, -1);
    job.state = state;
    job.ending = extra;
    this.#outcomes.set(state, (this.#outcomes.get(state) ?? 0) + 1);
    this.#jobs.delete(job.id); // the store keeps it (a duplicate submission is answered from it)
    this.#record(busJobEvent(job, state, extra, this.#clock.now(), true));
  }

  #emit(job: Job, state: BusJobState, extra: EventExtra = {}): void {
    this.#record(busJobEvent(job, state, extra, this.#clock.now()));
  }

  /** Writes an event to the store (which numbers it), then passes it on. */
  #record(event: DispatcherJobEvent): void {
    event.seq = this.#store.event(event);
    this.#onJobEvent(event);
  }

  /** A job back from a scheduler that left: cancelled if its owner asked, else requeued. */
  #endOrRequeue(job: Job, why: string): void {
    if (job.cancelRequested) this.#finish(job, "cancelled", { reason: why });
    else this.#requeue(job, why);
  }

  /**
   * Loads the store's unfinished jobs (a restarted bus): waiting ones back in the queue, those
   * at a scheduler kept for it (see {@linkcode RecoveringJobs}) for `graceMs`.
   */
  #recover(graceMs: number): void {
    this.#seq = this.#store.lastJobSeq + 1;
    for (const stored of this.#store.unfinished()) {
      const job = restoredBusJob(stored);
      this.#jobs.set(job.id, job);
      this.#countOwner(job.owner, 1);
      if (stored.atScheduler && stored.scheduler !== undefined) {
        this.#recovering.add(stored.scheduler, job);
      } else this.#queue.requeue(job);
    }
    this.#recovering.startGrace(graceMs);
  }

  #recoveryExpired(jobs: Job[]): void {
    for (const job of jobs.sort((a, b) => a.seq - b.seq)) {
      this.#endOrRequeue(job, "its scheduler did not come back after the bus restarted");
    }
    this.pump();
    if (this.#blocked) this.#onBlocked();
  }
}

/** Where a job without placement constraints may go: anywhere. */
const anywhere = (): boolean => true;
