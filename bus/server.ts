/**
 * The bus server: WebSocket connection handling, `/health` and `/status`. Parsing is in
 * `client_message.ts`, who may send what in `role_table.ts`, the delivery policy in
 * `dispatcher.ts`, the memory of jobs in a `JobStore` (`job_store.ts`), committed by
 * `commit_gate.ts`; events reach their readers through `event_feed.ts`.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import { Dispatcher, type DispatcherJobEvent } from "./dispatcher.ts";
import { BusStateError } from "./errors.ts";
import { TypedEventTarget } from "../core/typed_event_target.ts";
import { parseClientMessage } from "./client_message.ts";
import { roleRefusal, type TokenRights } from "./role_table.ts";
import {
  assignedIdPrefix,
  maySee,
  scopeFor,
  submittedId,
  toBusId,
  withClientId,
} from "./owner_scope.ts";
import { BusAuth, registerRefusal } from "./auth.ts";
import type { TokenIdentity } from "./token_store.ts";
import { upgradeRefusal } from "./upgrade_gate.ts";
import { ConnLimits } from "./conn_limits.ts";
import { HttpFront, type HttpFrontInfo } from "./http_front.ts";
import type { ServerWebSocket } from "./ws_server_socket.ts";
import type { BusHealth, BusServerOptions, BusStatus } from "./server_options.ts";

export type { BusHealth, BusServerOptions, BusStatus } from "./server_options.ts";
import type { CommitResult, JobStore } from "./job_store.ts";
import { SqliteStore } from "./sqlite_store.ts";
import { CommitGate } from "./commit_gate.ts";
import { EventRouter } from "./event_router.ts";
import { AcceptBatch, acceptedMessage } from "./accept_batch.ts";
import type { BusConn } from "./bus_conn.ts";
import { httpRoute } from "./http_routes.ts";
import { type ClusterStore, isClusterStore } from "./cluster_mail.ts";
import { ClusterNode } from "./cluster_node.ts";
import type { JobPlacer } from "./job_placer.ts";
import type { OpResult, SchedulerPeer } from "./dispatcher_types.ts";
import { isFinalState } from "../scheduler/job.ts";
import {
  BusCommitEvent,
  BusConnectionEvent,
  BusDispatchEvent,
  BusJobEvent,
  BusNoticeEvent,
  BusRegistrationEvent,
  BusRejectionEvent,
  type BusServerEventMap,
} from "./server_events.ts";
import {
  type ClientMessage,
  type DrainMessage,
  encodeMessage,
  type JobPayload,
  type JobRequestMessage,
  type ListMessage,
  type OutputMessage,
  type RegisterMessage,
  type ServerMessage,
} from "./protocol.ts";

type Conn = BusConn;

const MAX_REPORTED_REASONS = 5;
const RETRY_MS = 20;
const CLOSE_GRACE_MS = 2000;
/** How often finished jobs beyond `keepFinished` are pruned from the store. */
const PRUNE_MS = 60_000;

/**
 * The bus: a WebSocket server between producers, schedulers and monitors (`docs/protocol.md`).
 * It holds jobs in its own bounded priority queue until a scheduler can take them, gives each
 * job to one scheduler (or every one, `broadcast`), requeues evicted jobs and the jobs of lost
 * schedulers, and serves `GET /health` and `GET /status`.
 *
 * @example
 * ```ts
 * import { BusServer } from "./server.ts";
 * await using bus = new BusServer({ port: 0 });
 * const addr = bus.listen();
 * const health = await fetch(`http://127.0.0.1:${addr.port}/health`).then((r) => r.json());
 * console.log(health.status); // ok
 * ```
 */
export class BusServer extends TypedEventTarget<BusServerEventMap> {
  #hostname: string;
  #port: number;
  #maxFrameBytes: number;
  #idleTimeoutS: number;
  #maxBuffered: number;
  #clock: Clock;
  #limits: ConnLimits;
  #tls: { cert: string; key: string } | undefined;
  #dispatcher: JobPlacer; // a Dispatcher, or a follower's stand-in in a cluster
  #cluster: ClusterNode | undefined;
  #makeDispatcher: () => Dispatcher;
  #peers = new Map<string, SchedulerPeer>(); // local schedulers, by connection id
  #store: JobStore;
  #ownsStore: boolean;
  #gate: CommitGate;
  #router: EventRouter;
  #batch: AcceptBatch;
  #pruneTimer: TimerId | undefined;
  #server: HttpFront | undefined;
  #headerTimeoutMs: number;
  #conns = new Map<string, Conn>();
  #nextConn = 1;
  #startedAt = 0;
  #droppedOutput = 0;
  #jobEventStates: ReadonlySet<string> | undefined;
  #retry: TimerId | undefined;
  #closing: Promise<void> | undefined;
  #auth: BusAuth | undefined;
  #metrics: BusServerOptions["metrics"];

  /**
   * Creates a BusServer.
   *
   * @param options See {@linkcode BusServerOptions}.
   * @throws {RangeError} If a numeric option is out of range.
   * @throws {TypeError} If only one of `cert` and `key` is given.
   */
  constructor(options: BusServerOptions = {}) {
    super();
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? 8101;
    this.#maxFrameBytes = options.maxFrameBytes ?? 65_536;
    const pingTimeoutMs = options.pingTimeoutMs ?? 30_000;
    this.#maxBuffered = options.maxBufferedBytes ?? 1_048_576;
    check(
      Number.isInteger(this.#port) && this.#port >= 0 && this.#port <= 65535,
      "port",
      this.#port,
    );
    check(isPositiveInt(this.#maxFrameBytes), "maxFrameBytes", this.#maxFrameBytes);
    check(Number.isFinite(pingTimeoutMs) && pingTimeoutMs >= 0, "pingTimeoutMs", pingTimeoutMs);
    check(isPositiveInt(this.#maxBuffered), "maxBufferedBytes", this.#maxBuffered);
    this.#idleTimeoutS = Math.ceil(pingTimeoutMs / 1000);
    this.#headerTimeoutMs = options.headerTimeoutMs ?? 10_000;
    check(isPositiveInt(this.#headerTimeoutMs), "headerTimeoutMs", this.#headerTimeoutMs);
    this.#clock = options.clock ?? systemClock;
    this.#metrics = options.metrics;
    this.#limits = new ConnLimits({ ...options, clock: this.#clock });
    this.#tls = tlsOptions(options.cert, options.key);
    this.#jobEventStates = options.jobEventStates && new Set(options.jobEventStates);
    this.#ownsStore = options.store === undefined;
    const store = this.#store = options.store ?? new SqliteStore({ path: ":memory:" });
    this.#gate = new CommitGate(store, {
      onCommit: (result) => this.#committed(result),
      onStart: () => this.#batch.seal(),
      clock: this.#clock,
    });
    this.#router = new EventRouter({
      store,
      clock: this.#clock,
      maxBuffered: this.#maxBuffered,
      send: (conn, text) => this.#sendText(conn, text),
      dirty: () => this.#gate.dirty,
      onEvent: (event) => {
        if (this.#wantsJobEvent(event)) this.dispatchEvent(new BusJobEvent(event));
      },
    });
    this.#makeDispatcher = () =>
      new Dispatcher({
        store: this.#gate.store,
        recoverGraceMs: options.recoverGraceMs,
        lostFenceMs: options.lostFenceMs,
        maxQueue: options.maxQueue,
        maxQueuePerOwner: options.maxQueuePerOwner,
        broadcast: options.broadcast,
        clock: this.#clock,
        onJobEvent: (event) => this.#router.defer(event, this.#wantsJobEvent(event)),
        onDispatch: (info) => {
          if (this.listens("dispatch")) this.dispatchEvent(new BusDispatchEvent(info));
        },
        onNotice: (message) => this.#notice(message),
        onBlocked: () => this.#scheduleRetry(),
      });
    this.#cluster = isClusterStore(store) ? this.#clusterNode(store) : undefined;
    this.#dispatcher = this.#cluster?.placer ?? this.#makeDispatcher();
    this.#batch = new AcceptBatch({
      placer: () => this.#dispatcher,
      write: (conn, message) => this.#write(conn, encodeMessage(message)),
      reject: (conn, id, reason) =>
        this.#reject(conn, reason, { op: "job_request", id, asRejected: conn.protocol === 2 }),
      warn: (line) => this.dispatchEvent(new BusNoticeEvent(line, "warning")),
    });
    this.#auth = options.auth && new BusAuth(options.auth, {
      allowSeedClients: options.allowSeedClients ?? false,
      clock: this.#clock,
      onWarning: (line) => this.dispatchEvent(new BusNoticeEvent(line, "warning")),
    });
  }

  /** The bound address once listening. */
  get addr(): Deno.NetAddr | undefined {
    return this.#server?.addr;
  }

  /**
   * Starts listening.
   *
   * @returns The bound address (its `port` is the real one when the option was 0).
   * @throws {BusStateError} If already listening or closed.
   */
  listen(): Deno.NetAddr {
    if (this.#closing) throw new BusStateError("Cannot listen: the BusServer is closed");
    if (this.#server) throw new BusStateError("Cannot listen: the BusServer is already listening");
    this.#startedAt = this.#clock.now();
    const server = new HttpFront({
      hostname: this.#hostname,
      port: this.#port,
      tls: this.#tls,
      headerTimeoutMs: this.#headerTimeoutMs,
      // Over the limit, the bus itself answers (a rejection, then 1009); far over it, the socket.
      maxFrameBytes: Math.max(4 * this.#maxFrameBytes, 1_048_576),
      clock: this.#clock,
    }, (request, info) => this.#handle(request, info));
    const addr = server.listen();
    this.#server = server;
    this.#auth?.watch(() => this.#closeRevoked());
    this.#schedulePrune();
    this.#cluster?.start().catch((error) => {
      this.#warn(`cluster: ${error instanceof Error ? error.message : String(error)}`);
    });
    return addr;
  }

  /** In a cluster of buses on one shared store: this bus's id, and whether it leads. */
  get cluster(): { bus: string; leading: boolean } | undefined {
    const node = this.#cluster;
    return node && { bus: node.bus, leading: node.leading };
  }

  /** The bus's store (read it; the bus writes and commits it). */
  get store(): JobStore {
    return this.#store;
  }

  /**
   * The `/health` document.
   *
   * @returns Counts of clients and jobs, and uptime.
   */
  health(): BusHealth {
    const stats = this.#dispatcher.stats();
    let producers = 0;
    for (const conn of this.#conns.values()) if (conn.role === "producer") producers++;
    return {
      status: "ok",
      uptimeS: (this.#clock.now() - this.#startedAt) / 1000,
      producers,
      schedulers: { seed: stats.seedSchedulers, v2: stats.v2Schedulers },
      monitors: this.#router.monitors,
      jobs: { received: stats.received, delivered: stats.delivered, queued: stats.queued },
      store: { kind: this.#store.stats().kind, available: this.#batch.storeAvailable },
    };
  }

  /**
   * The `/status` document.
   *
   * @returns The queue by priority, each scheduler with its jobs, outcomes, the store's
   * counts, dropped output.
   */
  status(): BusStatus {
    const status = this.#dispatcher.status();
    for (const sched of status.schedulers) {
      const heardAt = this.#conns.get(sched.client)?.heardAt;
      if (heardAt !== undefined) sched.heardAt = heardAt;
    }
    return {
      ...status,
      ...(this.cluster ? { cluster: this.cluster } : {}),
      store: this.#store.stats(),
      droppedOutput: this.#droppedOutput,
    };
  }

  /**
   * Closes every connection with 1001 and stops listening. Idempotent.
   *
   * @returns Resolves when the server and every socket are closed.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const timer of [this.#retry, this.#pruneTimer]) {
        if (timer !== undefined) this.#clock.clearTimeout(timer);
      }
      this.#retry = this.#pruneTimer = undefined;
      this.#router.close();
      await this.#cluster?.close();
      this.#dispatcher.close(); // retry backoffs
      if (this.#gate.dirty || this.#batch.pending) this.#gate.flush(); // held outputs out
      await this.#auth?.close();
      const conns = [...this.#conns.values()];
      for (const conn of conns) {
        conn.stopRegisterWatch();
        closeSocket(conn.socket, 1001, "bus shutting down");
      }
      // A peer that never answers the close would hold us forever: wait a bounded time.
      let timer: TimerId | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = this.#clock.setTimeout(resolve, CLOSE_GRACE_MS);
      });
      await Promise.race([Promise.all(conns.map((conn) => conn.closed)), grace]);
      this.#clock.clearTimeout(timer!);
      for (const conn of conns) this.#abort(conn); // those that never answered
      await this.#server?.close();
      if (this.#gate.dirty) this.#gate.flush();
      this.#gate.close();
      if (this.#ownsStore) this.#store.close();
    })();
    return this.#closing;
  }

  /** Same as {@linkcode BusServer.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #handle(
    request: Request,
    info: HttpFrontInfo,
  ): Response | Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
      if (this.#closing) return new Response("bus shutting down\n", { status: 503 });
      const refusal = this.#refuseUpgrade(request);
      if (refusal) return refusal;
      if (!this.#auth) return this.#upgrade(request, info);
      // With --auth: only for a valid token (else 401 / 429, see auth.ts)
      return this.#auth.admit(
        request,
        info.remoteAddr.hostname,
        { upgrade: true },
        (id, protocol) =>
          this.#closing
            ? new Response("bus shutting down\n", { status: 503 })
            : this.#upgrade(request, info, id, protocol),
      );
    }
    return httpRoute(request, info.remoteAddr.hostname, {
      health: () => this.health(),
      status: () => this.status(),
      metrics: this.#metrics,
      auth: this.#auth,
    });
  }

  #upgrade(
    request: Request,
    info: HttpFrontInfo,
    identity?: TokenIdentity,
    protocol?: string,
  ): Response {
    const remote = `${info.remoteAddr.hostname}:${info.remoteAddr.port}`; // gone once upgraded
    const { socket, response } = this.#server!.upgrade(request, {
      idleTimeout: this.#idleTimeoutS,
      ...(protocol === undefined ? {} : { protocol }),
    });
    this.#accept(socket, remote, identity);
    return response;
  }

  /** After the token file changed: closes the connections whose token is gone with 1008. */
  #closeRevoked(): void {
    for (const conn of this.#conns.values()) {
      if (conn.identity && !this.#auth?.store.holds(conn.identity)) {
        closeSocket(conn.socket, 1008, "token revoked");
      }
    }
  }

  /** The answer to an upgrade the bus will not take (see {@linkcode upgradeRefusal}). */
  #refuseUpgrade(request: Request): Response | undefined {
    const secure = this.#tls !== undefined;
    const refused = upgradeRefusal(request, {
      secure,
      open: this.#conns.size,
      limits: this.#limits,
    });
    if (!refused) return undefined;
    if (refused.status !== 400) this.#notice(`refused an upgrade: ${refused.error}`);
    return Response.json({ error: refused.error }, { status: refused.status });
  }

  #accept(socket: ServerWebSocket, remote: string, identity?: TokenIdentity): void {
    const id = `c${this.#nextConn++}`;
    const { promise: closed, resolve } = Promise.withResolvers<void>();
    const conn: Conn = {
      id,
      socket,
      role: undefined,
      protocol: 1,
      name: id,
      owner: id,
      reported: new Set(),
      suppressed: 0,
      closed,
      identity,
      scope: undefined,
      rate: this.#limits.rateLimiter(),
      stopRegisterWatch: this.#limits.watchRegistration(() => {
        this.#closeHard(conn, 1008, this.#limits.registerTimeoutReason);
      }),
      abortTimer: undefined,
      reader: undefined,
      heardAt: this.#clock.now(),
    };
    socket.binaryType = "arraybuffer";
    this.#conns.set(id, conn);
    socket.onopen = () => {
      this.dispatchEvent(new BusConnectionEvent(id, true, { remote }));
    };
    socket.onmessage = (event) => this.#receive(conn, event.data);
    // A protocol error (1002), a message far over the limit (1009), invalid UTF-8 (1007).
    socket.onerror = (event) => {
      const why = event instanceof ErrorEvent ? event.message : "error";
      this.#notice(`${id}: ${why}: connection dropped`, conn);
    };
    socket.onclose = (event) => {
      if (conn.abortTimer !== undefined) this.#clock.clearTimeout(conn.abortTimer);
      conn.abortTimer = undefined;
      this.#drop(conn);
      resolve();
      if (conn.suppressed > 0) {
        this.dispatchEvent(new BusRejectionEvent(id, "further rejections", conn.suppressed));
      }
      this.dispatchEvent(
        new BusConnectionEvent(id, false, { code: event.code, reason: event.reason }),
      );
    };
  }

  #receive(conn: Conn, data: unknown): void {
    conn.heardAt = this.#clock.now();
    const seedScheduler = conn.role === "scheduler" && conn.protocol === 1;
    const size = frameBytes(data, this.#maxFrameBytes);
    if (size > this.#maxFrameBytes) {
      const reason = `frame of ${size} bytes is over the limit of ${this.#maxFrameBytes}`;
      this.#reject(conn, reason);
      this.#closeHard(conn, 1009, "frame too big");
      return;
    }
    const verdict = seedScheduler ? "ok" : conn.rate.take(); // a seed scheduler's are ignored
    if (verdict !== "ok") return this.#overRate(conn, data, verdict);
    if (typeof data !== "string") {
      this.#reject(conn, "binary frames are not supported: send JSON text frames");
      return;
    }
    if (seedScheduler) { // a seed scheduler has nothing to say; it must only ever get payloads
      this.#notice(`ignored a frame from seed scheduler ${conn.id}`, conn);
      return;
    }
    const parsed = parseClientMessage(data);
    if (!parsed.ok) {
      const asRejected = parsed.op === "job_request" && this.#isProducer(conn, 2);
      this.#reject(conn, parsed.reason, { op: parsed.op, id: parsed.id, asRejected });
      return;
    }
    this.#execute(conn, parsed.message);
    if (this.#dispatcher.blocked) this.#scheduleRetry();
  }

  /**
   * A message over the connection's rate limit: dropped; a job_request is answered (never lost
   * silently), anything else gets one `error` a second.
   */
  #overRate(conn: Conn, data: unknown, verdict: "drop" | "report"): void {
    // Parsed only when it may be a job_request or is reported: the excess costs next to nothing.
    const parse = typeof data === "string" &&
      (verdict === "report" || (this.#isProducer(conn) && data.includes("job_request")));
    const parsed = parse ? parseClientMessage(data) : undefined;
    const op = parsed === undefined ? undefined : parsed.ok ? parsed.message.cmd : parsed.op;
    const id = parsed === undefined
      ? undefined
      : parsed.ok
      ? ("id" in parsed.message ? parsed.message.id : undefined)
      : parsed.id;
    if (op === "job_request" && this.#isProducer(conn)) {
      this.#reject(conn, "rate limit", { op, id, asRejected: conn.protocol === 2 });
    } else if (verdict === "report") {
      this.#reject(conn, this.#limits.rateLimitReason, { op, id });
    }
  }

  #execute(conn: Conn, message: ClientMessage): void {
    if (!this.#mayExecute(conn, message)) return;
    switch (message.cmd) {
      case "register":
        return this.#register(conn, message);
      case "job_request":
        return this.#submit(conn, message);
      case "cancel":
      case "set_priority": {
        const id = toBusId(conn.scope, message.id); // an admin: any owner's job
        const owner = this.#isAdmin(conn) ? undefined : conn.owner;
        const result = message.cmd === "cancel"
          ? this.#dispatcher.cancel(owner, id)
          : this.#dispatcher.setPriority(owner, id, message.priority);
        const answer = (result: OpResult): void => {
          if (!result.ok) this.#reject(conn, result.reason, { op: message.cmd, id: message.id });
          else this.#send(conn, { cmd: "ack", op: message.cmd, id: message.id });
        };
        return result instanceof Promise ? void result.then(answer) : answer(result);
      }
      case "event":
        this.#dispatcher.schedulerEvent(conn.id, message);
        if (isFinalState(message.state) && conn.protocol === 2 && !this.#following) {
          this.#batch.ack(conn, message.id); // `reported` once the report is committed
          this.#gate.schedule();
        }
        return;
      case "drain":
        return this.#drain(conn, message);
      case "output":
        return this.#relayOutput(conn, message);
      case "list":
        return this.#list(conn, message);
      case "show": {
        const job = this.#store.show(toBusId(conn.scope, message.id), this.#waitingReason);
        if (!job || !maySee(conn.scope, job.owner)) {
          return this.#reject(conn, "unknown job", { op: "show", id: message.id });
        }
        return this.#send(conn, { cmd: "job_info", job: withClientId(conn.scope, job) });
      }
    }
  }

  /** A scoped producer lists its owner's jobs only (an admin's, everyone's), by its ids. */
  #list(conn: Conn, message: ListMessage): void {
    const { cmd: _cmd, ...query } = message;
    const scope = conn.scope;
    if (scope && !scope.admin) {
      if (query.owner !== undefined && query.owner !== scope.owner) {
        return this.#send(conn, { cmd: "jobs", jobs: [], total: 0 });
      }
      query.owner = scope.owner;
    }
    const { jobs, total } = this.#store.list(query, this.#waitingReason);
    const seen = jobs.map((job) => withClientId(scope, job));
    this.#send(conn, { cmd: "jobs", jobs: seen, total });
  }

  /**
   * `drain`: a scheduler's own (bare, or naming itself); an admin's names any scheduler and is
   * answered `ack` (or `error` "unknown scheduler X").
   */
  #drain(conn: Conn, message: DrainMessage): void {
    const name = message.scheduler;
    const own = conn.role === "scheduler" && (name === undefined || name === conn.name);
    if (own) {
      this.#dispatcher.drainScheduler(conn.id);
      if (name !== undefined) this.#send(conn, { cmd: "ack", op: "drain", id: name });
      return;
    }
    if (name === undefined) {
      return this.#reject(conn, "drain: name the scheduler to drain ('scheduler')", {
        op: "drain",
      });
    }
    if (!this.#isAdmin(conn)) {
      const role = conn.identity ? `: not allowed for role ${conn.identity.role}` : "";
      return this.#reject(conn, `drain of scheduler ${name} needs an admin token${role}`, {
        op: "drain",
      });
    }
    const answer = (count: number): void => {
      if (count === 0) this.#reject(conn, `unknown scheduler ${name}`, { op: "drain" });
      else this.#send(conn, { cmd: "ack", op: "drain", id: name });
    };
    const count = this.#dispatcher.drainSchedulerNamed(name);
    if (count instanceof Promise) void count.then(answer);
    else answer(count);
  }

  /** With `--auth`: a connection of an admin token. */
  #isAdmin(conn: Conn): boolean {
    return this.#auth !== undefined && conn.identity?.role === "admin";
  }

  /** Why a job waiting in the bus waits with nothing to run it (`JobSummary.waiting`). */
  #waitingReason = (id: string): string | undefined => this.#dispatcher.waitingReason(id);

  /**
   * A v2 scheduler's `output` of a job it runs: relayed as it is to the job's owner's
   * connections only (dropped and counted for a slow reader); ignored for any other job.
   */
  #relayOutput(conn: Conn, message: OutputMessage): void {
    const job = this.#dispatcher.job(message.id);
    if (!job || job.scheduler !== conn.name) {
      this.#notice(`ignored output of job ${message.id}: not at scheduler ${conn.name}`);
      return;
    }
    for (const owner of this.#router.producersOf(job.owner)) {
      if (owner.socket.bufferedAmount > this.#maxBuffered) this.#droppedOutput++;
      else this.#sendText(owner, encodeMessage(withClientId(owner.scope, message)));
    }
  }

  /** Whether the connection's role may send this message (see {@linkcode ALLOWED}); rejects it if not. */
  #mayExecute(conn: Conn, message: ClientMessage): boolean {
    const op = message.cmd;
    if (op === "register") {
      if (conn.role) this.#reject(conn, `already registered as ${conn.role}`, { op });
      const refusal = this.#auth && !conn.role
        ? registerRefusal(conn.identity, message.type, message.protocol)
        : undefined;
      if (refusal !== undefined) this.#reject(conn, refusal, { op });
      return conn.role === undefined && refusal === undefined;
    }
    const token: TokenRights | undefined = this.#auth && conn.identity
      ? { tokenRole: conn.identity.role }
      : undefined;
    const needs = roleRefusal(op, conn.role, conn.protocol, token);
    if (needs === undefined) return true;
    const id = "id" in message ? message.id : undefined;
    this.#reject(conn, needs, { op, id });
    return false;
  }

  /**
   * A job request: a duplicate of a known job is answered with its state; a new job is staged
   * in the store and answered (`accepted`, or `rejected` "store unavailable") once the batch
   * is committed (see {@linkcode BusServer.#committed}).
   */
  #submit(conn: Conn, message: JobRequestMessage): void {
    const result = this.#dispatcher.prepare({
      owner: conn.owner,
      id: submittedId(this.#auth !== undefined, conn.scope, message.id),
      payload: message.payload,
      idPrefix: assignedIdPrefix(conn.scope),
    });
    if (!result.ok) {
      const asRejected = conn.protocol === 2;
      return this.#reject(conn, result.reason, { op: message.cmd, id: message.id, asRejected });
    }
    if (!result.duplicate || this.#dispatcher.isPending(result.id)) {
      const pending = this.#batch.accept(conn, result.id, result.duplicate);
      this.#gate.send(() => this.#batch.answer(pending)); // in its place, after the commit
      return;
    }
    if (conn.protocol === 2) {
      this.#send(conn, acceptedMessage(this.#dispatcher, conn, result.id));
    }
  }

  /**
   * After each commit (see `CommitGate`): the batch's job requests are answered and the
   * reports it stored acknowledged (`accept_batch.ts`), lagging readers caught up.
   */
  #committed(result: CommitResult): void {
    if (this.listens("commit")) {
      this.dispatchEvent(
        result.ok
          ? new BusCommitEvent(true, result.ms, result.writes)
          : new BusCommitEvent(false, 0, 0),
      );
    }
    this.#batch.committed(result);
    this.#router.committed();
    if (this.#dispatcher.blocked) this.#scheduleRetry();
  }

  #register(conn: Conn, message: RegisterMessage): void {
    conn.stopRegisterWatch();
    conn.role = message.type;
    conn.protocol = message.protocol;
    // With --auth the token's name is the identity (a seed client's: its connection id): a
    // `name` in `register` cannot claim another's jobs or scheduler.
    const bound = this.#auth ? conn.identity?.name ?? conn.id : undefined;
    conn.name = bound ?? message.name ?? conn.id;
    conn.owner = bound ?? message.name ?? conn.id;
    conn.scope = scopeFor(this.#auth !== undefined, conn);
    const warning = this.#nameInUse(conn);
    if (conn.protocol === 2) {
      this.#send(conn, {
        cmd: "registered",
        type: message.type,
        protocol: 2,
        client: conn.id,
        name: conn.name,
        ...(warning === undefined ? {} : { warning }),
        seq: this.#store.lastSeq,
        ...(conn.identity ? { tokenRole: conn.identity.role } : {}),
      });
      if (conn.role !== "scheduler") this.#router.follow(conn, message.after);
    }
    if (warning !== undefined) {
      this.dispatchEvent(new BusNoticeEvent(`${conn.id}: ${warning}`, "warning"));
    }
    this.dispatchEvent(new BusRegistrationEvent(conn.id, conn.role, conn.protocol, conn.name));
    if (conn.role === "scheduler") {
      const socket = conn.socket;
      const seed = conn.protocol === 1;
      const peer: SchedulerPeer = {
        client: conn.id,
        name: conn.name,
        protocol: conn.protocol,
        slots: message.slots ?? 0,
        labels: message.labels,
        commands: message.commands,
        canSend: () => socket.bufferedAmount <= this.#maxBuffered,
        sendJob: (id: string, payload: JobPayload, attempt: number) =>
          this.#sendText(
            conn,
            seed ? JSON.stringify(payload) : encodeMessage({ cmd: "job", id, payload, attempt }),
          ),
        sendCancel: (id: string, reason: string) => this.#send(conn, { cmd: "cancel", id, reason }),
      };
      this.#peers.set(conn.id, peer);
      this.#dispatcher.addScheduler(peer, message.running);
    }
  }

  /** Prunes finished jobs beyond `keepFinished` now and every {@linkcode PRUNE_MS}. */
  #schedulePrune(): void {
    if (this.#closing) return;
    this.#gate.store.prune(this.#clock.now());
    this.#pruneTimer = this.#clock.setTimeout(() => this.#schedulePrune(), PRUNE_MS);
  }

  /** Whether this bus follows a cluster's leader (its placement is the leader's). */
  get #following(): boolean {
    return this.#cluster !== undefined && !this.#cluster.leading;
  }

  /** This bus's part in a cluster of buses on one shared store (`cluster_node.ts`). */
  #clusterNode(store: ClusterStore): ClusterNode {
    return new ClusterNode({
      store,
      tracked: this.#gate.store,
      schedule: () => this.#gate.schedule(),
      makeDispatcher: this.#makeDispatcher,
      setPlacer: (placer) => {
        this.#dispatcher = placer;
        if (placer.blocked) this.#scheduleRetry();
      },
      localSchedulers: () => [...this.#peers.values()],
      toScheduler: (client, message) => {
        const conn = this.#conns.get(client);
        if (conn) this.#send(conn, message);
      },
      onEvents: (events) => {
        for (const event of events) this.#router.defer(event, this.#wantsJobEvent(event));
      },
      log: (line) => this.dispatchEvent(new BusNoticeEvent(`cluster: ${line}`, "info")),
    });
  }

  #warn(line: string): void {
    this.dispatchEvent(new BusNoticeEvent(line, "warning"));
  }

  /** For a scheduler registering with a name a live scheduler connection uses: says so. */
  #nameInUse(conn: Conn): string | undefined {
    if (conn.role !== "scheduler" || conn.name === conn.id) return undefined;
    for (const other of this.#conns.values()) {
      if (other !== conn && other.role === "scheduler" && other.name === conn.name) {
        return `scheduler name "${conn.name}" is already used by connection ${other.id} ` +
          "(a second scheduler with this name, or this one's stale connection)";
      }
    }
    return undefined;
  }

  #drop(conn: Conn): void {
    conn.stopRegisterWatch();
    if (!this.#conns.delete(conn.id)) return;
    this.#router.drop(conn);
    this.#batch.drop(conn);
    this.#peers.delete(conn.id);
    if (conn.role === "scheduler" && !this.#closing) {
      this.#dispatcher.removeScheduler(conn.id);
      if (this.#dispatcher.blocked) this.#scheduleRetry();
    }
  }

  #wantsJobEvent(event: DispatcherJobEvent): boolean {
    return this.listens("job") && (this.#jobEventStates?.has(event.state) ?? true);
  }

  #reject(
    conn: Conn,
    reason: string,
    where: { op?: string | undefined; id?: string | undefined; asRejected?: boolean } = {},
  ): void {
    if (!(conn.role === "scheduler" && conn.protocol === 1)) {
      const id = where.id === undefined ? {} : { id: where.id };
      if (where.asRejected) this.#send(conn, { cmd: "rejected", ...id, reason });
      else {
        this.#send(conn, { cmd: "error", reason, ...(where.op ? { op: where.op } : {}), ...id });
      }
    }
    if (conn.reported.has(reason) || conn.reported.size >= MAX_REPORTED_REASONS) {
      conn.suppressed++;
      return;
    }
    conn.reported.add(reason);
    this.dispatchEvent(new BusRejectionEvent(conn.id, reason));
  }

  #notice(message: string, conn?: Conn): void {
    if (conn) { // per-connection notices are deduplicated like rejections
      if (conn.reported.has(message)) return;
      conn.reported.add(message);
    }
    this.dispatchEvent(new BusNoticeEvent(message));
  }

  #send(conn: Conn, message: ServerMessage): void {
    this.#sendText(conn, encodeMessage(message));
  }

  /** Sends a frame, held until the commit of the writes before it (see `CommitGate`). */
  #sendText(conn: Conn, text: string): void {
    this.#gate.send(() => this.#write(conn, text));
  }

  /** Sends a frame now. */
  #write(conn: Conn, text: string): void {
    const socket = conn.socket;
    if (socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > 4 * this.#maxBuffered) {
      this.#closeHard(conn, 1008, "send buffer overflow: peer does not read");
      return;
    }
    socket.send(text);
  }

  /**
   * Closes a connection the bus gives up on; a peer that does not complete the close handshake
   * within {@linkcode CLOSE_GRACE_MS} (one that does not read never will) has its TCP connection
   * dropped.
   */
  #closeHard(conn: Conn, code: number, reason: string): void {
    if (conn.socket.readyState === WebSocket.OPEN) this.#notice(`${conn.id}: closing: ${reason}`);
    closeSocket(conn.socket, code, reason);
    if (conn.abortTimer !== undefined || !this.#conns.has(conn.id)) return;
    conn.abortTimer = this.#clock.setTimeout(() => {
      conn.abortTimer = undefined;
      this.#abort(conn);
    }, CLOSE_GRACE_MS);
  }

  /** Drops the TCP connection of a socket not closed yet. */
  #abort(conn: Conn): void {
    if (conn.abortTimer !== undefined) this.#clock.clearTimeout(conn.abortTimer);
    conn.abortTimer = undefined;
    if (conn.socket.readyState === WebSocket.CLOSED) return;
    conn.socket.abort();
    this.#notice(`${conn.id}: no answer to the close: dropped`);
  }

  #isProducer(conn: Conn, protocol?: 1 | 2): boolean {
    return conn.role === "producer" && (protocol === undefined || conn.protocol === protocol);
  }

  #scheduleRetry(): void {
    if (this.#retry !== undefined || this.#closing) return;
    this.#retry = this.#clock.setTimeout(() => {
      this.#retry = undefined;
      this.#dispatcher.pump();
      if (this.#dispatcher.blocked) this.#scheduleRetry();
    }, RETRY_MS);
  }
}

/** A frame's size in bytes, counted exactly only when it might be over `limit`. */
function frameBytes(data: unknown, limit: number): number {
  if (typeof data !== "string") return (data as ArrayBuffer).byteLength;
  return data.length * 3 <= limit ? data.length : new TextEncoder().encode(data).byteLength;
}

/** Closes a socket in any state (closing one still connecting must not throw). */
function closeSocket(socket: ServerWebSocket, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    // already closing
  }
}

/** The TLS options from `cert` and `key`: both or neither. */
function tlsOptions(
  cert: string | undefined,
  key: string | undefined,
): { cert: string; key: string } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    throw new TypeError("Cannot create BusServer: 'cert' and 'key' go together, got only one");
  }
  return { cert, key };
}

function isPositiveInt(value: number): boolean {
  return Number.isInteger(value) && value > 0;
}

function check(ok: boolean, name: string, value: unknown): void {
  if (!ok) throw new RangeError(`Cannot create BusServer: '${name}' is out of range, got ${value}`);
}
