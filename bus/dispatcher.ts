/**
 * The bus's delivery policy, without sockets: the job table, the waiting queue, the schedulers
 * and their credits, and the rules that decide which scheduler gets which job (exactly-once with
 * cluster-wide preemption, or the seed's broadcast).
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import { type CommandSpec, isCommandPayload } from "../scheduler/command_spec.ts";
import { BusStateError } from "./errors.ts";
import { JobQueue } from "./job_queue.ts";
import { FinishedIds } from "./finished_ids.ts";
import {
  type Placement,
  placementFits,
  type PooledScheduler,
  SchedulerPool,
} from "./scheduler_pool.ts";
import { type BusJobState, type JobPayload, type SchedulerEventMessage } from "./protocol.ts";
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
  WaitingJobStatus,
} from "./dispatcher_types.ts";

export type * from "./dispatcher_types.ts";

interface Job {
  id: string;
  givenId: boolean; // the producer chose the id (remembered after the end, for idempotency)
  owner: string;
  payload: JobPayload;
  placement: Placement; // where it may run; equal placements share a queue class
  priority: number;
  seq: number;
  attempt: number; // hand-overs to schedulers so far
  failures: number; // failed or timed-out attempts so far (retries used)
  retryTimer: TimerId | undefined; // set while it waits out a retry's backoff
  lastResult: Record<string, unknown> | undefined; // the result of its last failed attempt
  state: BusJobState | "dispatched";
  scheduler: Sched | undefined;
  startedAt: number;
  suspended: boolean;
  preemptor: Job | undefined; // the job last sent to evict this one (see #marked)
  cancelRequested: boolean;
  ending: EventExtra | undefined; // the final event's details, once final
}

type Sched = PooledScheduler<Job>;

/** Longest wait before a retry. */
const MAX_RETRY_DELAY_MS = 60_000;
/** How many waiting jobs `/status` lists. */
const STATUS_JOBS = 100;

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
export class Dispatcher {
  #queue: JobQueue<Job>;
  #jobs = new Map<string, Job>(); // unfinished jobs and the most recent finished given ids
  #finished: FinishedIds; // the given ids of final jobs, kept in #jobs while remembered
  #scheds = new SchedulerPool<Job>();
  #idPrefix = `b${crypto.randomUUID().slice(0, 8)}-`; // bus-assigned ids: prefix + counter
  #nextId = 1;
  #broadcast: boolean;
  #clock: Clock;
  #onJobEvent: (event: DispatcherJobEvent) => void;
  #onDispatch: (info: DispatchInfo) => void;
  #onNotice: (message: string) => void;
  #onBlocked: () => void;
  #backoff = new Set<Job>(); // jobs waiting out a retry's backoff
  #seq = 0;
  #received = 0;
  #delivered = 0;
  #outcomes = new Map<string, number>();
  #blocked = false;
  #skipped = false; // a scheduler's full send buffer held a job back in this round

  /**
   * Creates a Dispatcher.
   *
   * @param options See {@linkcode DispatcherOptions}.
   * @throws {RangeError} If `maxQueue` or `rememberFinished` is not a positive integer.
   */
  constructor(options: DispatcherOptions = {}) {
    this.#queue = new JobQueue<Job>({
      maxLength: options.maxQueue ?? 100_000,
      classOf: (job) => job.placement === SLEEPER ? "" : placementKey(job.placement),
    });
    const remember = options.rememberFinished ?? 100_000;
    if (!Number.isInteger(remember) || remember < 1) {
      throw new RangeError(
        `Cannot create Dispatcher: 'rememberFinished' must be a positive integer, got ${remember}`,
      );
    }
    this.#finished = new FinishedIds(remember);
    this.#broadcast = options.broadcast ?? false;
    this.#clock = options.clock ?? systemClock;
    this.#onJobEvent = options.onJobEvent ?? (() => {});
    this.#onDispatch = options.onDispatch ?? (() => {});
    this.#onNotice = options.onNotice ?? (() => {});
    this.#onBlocked = options.onBlocked ?? (() => {});
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
   * Accepts a job into the bus queue (or recognises a known id), then dispatches.
   *
   * @param request Owner, optional id, validated payload.
   * @returns Accepted (with the id; for a duplicate, the job's current or final state) or
   * rejected "queue full".
   */
  submit(request: SubmitRequest): SubmitResult {
    const known = request.id === undefined ? undefined : this.#jobs.get(request.id);
    if (known) return { ok: true, id: known.id, duplicate: true, ...this.#known(known) };
    if (this.#queue.full) return { ok: false, reason: "queue full" };
    let id = request.id;
    while (id === undefined || this.#jobs.has(id)) id = this.#idPrefix + this.#nextId++;
    const job: Job = {
      id,
      givenId: request.id !== undefined,
      owner: request.owner,
      payload: request.payload, // shared: setPriority copies before it changes the priority
      placement: placementOf(request.payload),
      priority: request.payload.priority,
      seq: this.#seq++,
      attempt: 0,
      failures: 0,
      retryTimer: undefined,
      lastResult: undefined,
      state: "queued",
      scheduler: undefined,
      startedAt: 0,
      suspended: false,
      preemptor: undefined,
      cancelRequested: false,
      ending: undefined,
    };
    this.#received++;
    this.#jobs.set(id, job);
    this.#emit(job, "queued");
    this.#queue.enqueue(job);
    this.pump();
    const waiting = this.#scheds.size === 0
      ? "no scheduler connected"
      : this.#queue.has(job)
      ? this.#scheds.waitingReason(job.placement)
      : undefined;
    return waiting === undefined
      ? { ok: true, id, duplicate: false }
      : { ok: true, id, duplicate: false, waiting };
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
   * @param owner The asking producer's owner identity.
   * @param id The job.
   * @returns Ok, or why not (unknown, not yours, already final).
   */
  cancel(owner: string, id: string): OpResult {
    const job = this.#ownJob(owner, id);
    if (!("id" in job)) return job;
    if (this.#queue.remove(job) || this.#stopBackoff(job)) {
      const result = job.lastResult;
      this.#finish(job, "cancelled", { reason: "cancelled by producer", result });
      return { ok: true };
    }
    if (!job.scheduler) return { ok: false, reason: `job already ${job.state}` }; // final
    if (!job.cancelRequested) {
      job.cancelRequested = true;
      job.scheduler.peer.sendCancel(id, "cancelled by producer");
    }
    return { ok: true };
  }

  /**
   * A producer changes the priority of one of its jobs still waiting in the bus queue.
   *
   * @param owner The asking producer's owner identity.
   * @param id The job.
   * @param priority The new priority (validated by the caller).
   * @returns Ok, or why not (unknown, not yours, not waiting).
   */
  setPriority(owner: string, id: string, priority: number): OpResult {
    const job = this.#ownJob(owner, id);
    if (!("id" in job)) return job;
    if (job.retryTimer !== undefined) job.priority = priority; // out of the queue for a while
    else if (!this.#queue.setPriority(job, priority)) {
      return { ok: false, reason: `job is not waiting in the bus queue (state ${job.state})` };
    }
    job.payload = { ...job.payload, priority };
    this.pump();
    return { ok: true };
  }

  /**
   * Adds a scheduler; a reconnecting v2 scheduler reports the jobs it still runs: those waiting
   * in the bus queue (or still attached to a connection with its name) are re-attached to it,
   * the others are cancelled at it (`"reassigned"`, or `"unknown job"`).
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
    for (const id of peer.protocol === 2 ? running : []) this.#reclaim(sched, id);
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
   * Removes a scheduler (disconnected or silent): its unfinished jobs are requeued (or
   * cancelled, if their producer had asked).
   *
   * @param client The scheduler's connection id; unknown ids are ignored.
   */
  removeScheduler(client: string): void {
    const sched = this.#scheds.remove(client);
    if (!sched) return;
    // A scheduler that said `drain` left on purpose; any other was lost.
    const why = sched.draining ? "scheduler stopped" : "scheduler lost";
    for (const job of [...sched.jobs].sort((a, b) => a.seq - b.seq)) {
      this.#detach(job);
      if (job.cancelRequested) this.#finish(job, "cancelled", { reason: why });
      else this.#requeue(job, why);
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
    if (!sched || !job) {
      this.#onNotice(`ignored ${event.state} of unknown job ${event.id} from ${client}`);
      return;
    }
    const at = event.at ?? this.#clock.now();
    const extra = { at, scheduler: sched.peer.name, result: event.result, reason: event.reason };
    if (job.state === "delivered") { // broadcast: final for the bus; pass reports on
      this.#onJobEvent(this.#event(job, event.state, extra));
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
            this.#finish(job, "cancelled", { reason: "cancelled by producer" });
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
    if (this.#queue.classCount <= 1) { // the common case: one order, no bookkeeping
      while (this.#queue.length > 0 && this.#deliver(this.#queue.peek()!)) {
        // handed the next one out
      }
      this.#blocked = this.#skipped && this.#queue.length > 0;
      return;
    }
    // One head per placement class; a class whose head cannot go now is done for this round
    // (a hand-over only ever takes capacity away), the others go on in priority order.
    const heads = new Map<string, Job>();
    for (const { key, head } of this.#queue.classes()) heads.set(key, head);
    while (heads.size > 0) {
      let key = "";
      let best: Job | undefined;
      for (const [k, head] of heads) {
        if (!best || head.priority < best.priority ||
          (head.priority === best.priority && head.seq < best.seq)) [key, best] = [k, head];
      }
      if (!this.#deliver(best!)) heads.delete(key);
      else {
        const next = this.#queue.peekClass(key);
        if (next) heads.set(key, next);
        else heads.delete(key);
      }
    }
    this.#blocked = this.#skipped && this.#queue.length > 0;
  }

  /**
   * Stops the retry timers of jobs waiting out a backoff (they stay where they are: a job is
   * still known and can be cancelled). Idempotent; call it when the bus shuts down.
   */
  close(): void {
    for (const job of this.#backoff) this.#clock.clearTimeout(job.retryTimer!);
    this.#backoff.clear();
  }

  /**
   * Looks a job up.
   *
   * @param id The job id.
   * @returns Where the job is, or undefined if unknown or forgotten.
   */
  job(id: string): BusJobView | undefined {
    const job = this.#jobs.get(id);
    if (!job) return undefined;
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
    return {
      queue: {
        length: this.#queue.length,
        byPriority: this.#queue.countByPriority(),
        jobs: this.#queue.first(STATUS_JOBS).map((job) => this.#waitingStatus(job)),
      },
      schedulers: this.#scheds.all().map((sched) => {
        const { peer, jobs } = sched;
        const v2 = peer.protocol === 2;
        return {
          client: peer.client,
          name: peer.name,
          protocol: peer.protocol,
          slots: v2 ? peer.slots : undefined,
          free: v2 ? this.#scheds.free(sched) : undefined,
          draining: sched.draining,
          running: [...jobs].map((job) => ({
            id: job.id,
            priority: job.priority,
            state: job.state,
          })),
        };
      }),
      outcomes: Object.fromEntries(this.#outcomes),
    };
  }

  #waitingStatus(job: Job): WaitingJobStatus {
    const entry: WaitingJobStatus = { id: job.id, priority: job.priority, waiting: null };
    if (typeof job.payload.name === "string") entry.name = job.payload.name;
    entry.waiting = this.#scheds.waitingReason(job.placement) ?? null;
    return entry;
  }

  #known(job: Job): KnownJobState {
    const { ending } = job;
    const state = job.state === "dispatched" ? "queued" : job.state;
    const known: KnownJobState = { state, final: ending !== undefined };
    const scheduler = ending ? ending.scheduler : job.scheduler?.peer.name;
    if (scheduler !== undefined) known.scheduler = scheduler;
    if (ending?.result !== undefined) known.result = ending.result;
    if (ending?.reason !== undefined) known.reason = ending.reason;
    return known;
  }

  #ownJob(owner: string, id: string): Job | { ok: false; reason: string } {
    const job = this.#jobs.get(id);
    if (!job) return { ok: false, reason: "unknown job" };
    if (job.owner !== owner) return { ok: false, reason: "not your job" };
    return job;
  }

  #reclaim(sched: Sched, id: string): void {
    const job = this.#jobs.get(id);
    const from = job?.scheduler;
    if (job && (this.#queue.has(job) || (from && from.peer.name === sched.peer.name))) {
      this.#queue.remove(job);
      if (from) { // a stale connection of this scheduler, or a second live one with its name
        this.#scheds.unattach(job);
        from.peer.sendCancel(id, "reassigned");
      }
      job.startedAt = this.#clock.now();
      this.#scheds.attach(job, sched);
      this.#onNotice(`re-attached job ${id} to ${sched.peer.name}`);
      if (job.cancelRequested) sched.peer.sendCancel(id, "cancelled by producer");
      else if (!from) {
        job.state = "started";
        this.#emit(job, "started", { scheduler: sched.peer.name, reason: "reattached" });
      }
      return;
    }
    const reason = job ? "reassigned" : "unknown job";
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
    const fits = job.placement === SLEEPER
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
    const delayMs = Math.min(1000 * 2 ** (job.failures - 1), MAX_RETRY_DELAY_MS);
    const reason = `retry ${job.failures} of ${retries} in ${delayMs / 1000} s (${
      failureCause(state, extra)
    })`;
    job.state = "requeued";
    job.retryTimer = this.#clock.setTimeout(() => {
      job.retryTimer = undefined;
      this.#backoff.delete(job);
      this.#queue.requeue(job);
      this.pump();
      if (this.#blocked) this.#onBlocked();
    }, delayMs);
    this.#backoff.add(job);
    this.#emit(job, "requeued", { ...extra, reason });
    return true;
  }

  /** Ends a job's retry backoff, if it is in one. */
  #stopBackoff(job: Job): boolean {
    if (job.retryTimer === undefined) return false;
    this.#clock.clearTimeout(job.retryTimer);
    job.retryTimer = undefined;
    this.#backoff.delete(job);
    return true;
  }

  #requeue(job: Job, reason: string): void {
    job.state = "requeued";
    this.#queue.requeue(job);
    this.#emit(job, "requeued", { reason });
  }

  #finish(job: Job, state: BusJobState, extra: EventExtra = {}): void {
    job.state = state;
    job.ending = extra;
    this.#outcomes.set(state, (this.#outcomes.get(state) ?? 0) + 1);
    const forget = job.givenId ? this.#finished.remember(job.id) : job.id; // a bus-assigned id:
    if (forget !== undefined) this.#jobs.delete(forget); // nobody can ask for it again
    this.#onJobEvent(this.#event(job, state, extra, true));
  }

  #emit(job: Job, state: BusJobState, extra: EventExtra = {}): void {
    this.#onJobEvent(this.#event(job, state, extra));
  }

  #event(job: Job, state: BusJobState, extra: EventExtra, final = false): DispatcherJobEvent {
    const event: DispatcherJobEvent = {
      cmd: "event",
      id: job.id,
      state,
      at: extra.at ?? this.#clock.now(),
      priority: job.priority,
      owner: job.owner,
    };
    if (extra.scheduler !== undefined) event.scheduler = extra.scheduler;
    if (extra.result !== undefined) event.result = extra.result;
    if (extra.reason !== undefined) event.reason = extra.reason;
    if (final) event.final = true;
    return event;
  }
}

/** An event's details beyond the job's own; a field `undefined` (as a report gives) is left out. */
interface EventExtra {
  at?: number | undefined;
  scheduler?: string | undefined;
  result?: Record<string, unknown> | undefined;
  reason?: string | undefined;
}

/** Where a sleeper job without `requires` may go: anywhere. */
const anywhere = (): boolean => true;

/** The placement of every sleeper job without `requires`: any scheduler fits. */
const SLEEPER: Placement = { requires: undefined, command: undefined };

/** Where a job may run, from its validated payload. */
function placementOf(payload: JobPayload): Placement {
  const command = isCommandPayload(payload) ? (payload.command as string[])[0] : undefined;
  const requires = payload.requires as Record<string, string> | undefined;
  const none = requires === undefined || Object.keys(requires).length === 0;
  if (command === undefined && none) return SLEEPER;
  return { requires: none ? undefined : requires, command };
}

/** The queue class of a placement: equal keys, equal matching schedulers. */
function placementKey(placement: Placement): string {
  const requires = placement.requires ? Object.entries(placement.requires).sort() : [];
  return JSON.stringify([placement.command ?? null, requires]);
}

/** Why an attempt failed, in a retry's reason: its exit code, signal, or state. */
function failureCause(state: "failed" | "timed_out", extra: EventExtra): string {
  const { exitCode, signal } = extra.result ?? {};
  if (state === "timed_out") return "timed out";
  if (typeof signal === "string") return `killed by ${signal}`;
  if (typeof exitCode === "number") return `exit code ${exitCode}`;
  return extra.reason ?? "failed";
}
