/**
 * The bus server: WebSocket connection handling, `/health` and `/status`. Parsing is in
 * `client_message.ts`, who may send what in `role_table.ts`, the delivery policy in
 * `dispatcher.ts`, the memory of jobs in `job_records.ts`.
 *
 * @module
 */

import { dashboardResponse } from "./dashboard_page.ts";
import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import { Dispatcher, type DispatcherJobEvent } from "./dispatcher.ts";
import { BusStateError } from "./errors.ts";
import { TypedEventTarget } from "../core/typed_event_target.ts";
import { parseClientMessage } from "./client_message.ts";
import { roleRefusal, type TokenRights } from "./role_table.ts";
import {
  assignedIdPrefix,
  type IdScope,
  maySee,
  scopeFor,
  submittedId,
  toBusId,
  toClientId,
  withClientId,
} from "./owner_scope.ts";
import { BusAuth, registerRefusal } from "./auth.ts";
import type { TokenIdentity } from "./token_store.ts";
import { upgradeRefusal } from "./upgrade_gate.ts";
import { ConnLimits } from "./conn_limits.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import { HttpFront, type HttpFrontInfo } from "./http_front.ts";
import type { ServerWebSocket } from "./ws_server_socket.ts";
import type { BusHealth, BusServerOptions, BusStatus } from "./server_options.ts";

export type { BusHealth, BusServerOptions, BusStatus } from "./server_options.ts";
import { JobRecords } from "./job_records.ts";
import {
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
  type Role,
  type ServerMessage,
} from "./protocol.ts";

interface Conn {
  id: string;
  socket: ServerWebSocket;
  role: Role | undefined;
  protocol: 1 | 2;
  name: string;
  owner: string;
  reported: Set<string>; // rejection reasons already dispatched
  suppressed: number;
  closed: Promise<void>;
  identity?: TokenIdentity | undefined; // with --auth: the token's holder (none: a seed client)
  scope: IdScope | undefined; // with --auth, a producer's: its ids are <owner>/<id> bus-wide
  rate: RateLimiter;
  stopRegisterWatch: () => void;
  abortTimer: TimerId | undefined; // after a close the peer may never answer: drop the TCP
}

const MAX_REPORTED_REASONS = 5;
const RETRY_MS = 20;
const CLOSE_GRACE_MS = 2000;

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
  #dispatcher: Dispatcher;
  #records: JobRecords;
  #server: HttpFront | undefined;
  #headerTimeoutMs: number;
  #conns = new Map<string, Conn>();
  #owners = new Map<string, Set<Conn>>(); // v2 producers by owner
  #monitors = new Set<Conn>();
  #nextConn = 1;
  #startedAt = 0;
  #droppedEvents = 0;
  #jobEventStates: ReadonlySet<string> | undefined;
  #pendingEvents: DispatcherJobEvent[] = []; // job events to forward after the current message
  #retry: TimerId | undefined;
  #closing: Promise<void> | undefined;
  #auth: BusAuth | undefined;

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
    this.#limits = new ConnLimits({ ...options, clock: this.#clock });
    this.#tls = tlsOptions(options.cert, options.key);
    this.#jobEventStates = options.jobEventStates && new Set(options.jobEventStates);
    const records = this.#records = new JobRecords(options.jobRecords);
    this.#dispatcher = new Dispatcher({
      maxQueue: options.maxQueue,
      maxQueuePerOwner: options.maxQueuePerOwner,
      broadcast: options.broadcast,
      clock: this.#clock,
      onJobEvent: (event) => {
        records.record(event);
        this.#defer(event);
      },
      onDispatch: (info) => {
        records.dispatched(info.id, info.scheduler);
        if (this.listens("dispatch")) this.dispatchEvent(new BusDispatchEvent(info));
      },
      onNotice: (message) => this.#notice(message),
      onBlocked: () => this.#scheduleRetry(),
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
    return addr;
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
      monitors: this.#monitors.size,
      jobs: { received: stats.received, delivered: stats.delivered, queued: stats.queued },
    };
  }

  /**
   * The `/status` document.
   *
   * @returns The queue by priority, each scheduler with its jobs, outcomes, dropped events.
   */
  status(): BusStatus {
    return { ...this.#dispatcher.status(), droppedEvents: this.#droppedEvents };
  }

  /**
   * Closes every connection with 1001 and stops listening. Idempotent.
   *
   * @returns Resolves when the server and every socket are closed.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#retry !== undefined) this.#clock.clearTimeout(this.#retry);
      this.#retry = undefined;
      this.#dispatcher.close(); // retry backoffs
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
    const url = new URL(request.url);
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
    if (request.method === "GET" && url.pathname === "/health") return Response.json(this.health());
    if (request.method === "GET" && url.pathname === "/status") {
      if (!this.#auth) return Response.json(this.status());
      const need = { upgrade: false, roles: ["monitor", "admin"] } as const;
      return this.#auth.admit(
        request,
        info.remoteAddr.hostname,
        need,
        () => Response.json(this.status()),
      );
    }
    const page = request.method === "GET" ? dashboardResponse(url.pathname, request) : undefined;
    if (page) return page; // the dashboard (dashboard_page.ts)
    if (url.pathname === "/") {
      return new Response("sched bus: connect with a WebSocket (see docs/protocol.md)\n", {
        status: 426,
        headers: { upgrade: "websocket" },
      });
    }
    return new Response("not found\n", { status: 404 });
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
        if (!result.ok) {
          return this.#reject(conn, result.reason, { op: message.cmd, id: message.id });
        }
        if (message.cmd === "set_priority") this.#records.setPriority(id, message.priority);
        return this.#send(conn, { cmd: "ack", op: message.cmd, id: message.id });
      }
      case "event":
        return this.#dispatcher.schedulerEvent(conn.id, message);
      case "drain":
        return this.#drain(conn, message);
      case "output":
        return this.#relayOutput(conn, message);
      case "list":
        return this.#list(conn, message);
      case "show": {
        const job = this.#records.show(toBusId(conn.scope, message.id), this.#waitingReason);
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
    const { jobs, total } = this.#records.list(query, this.#waitingReason);
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
    if (this.#dispatcher.drainSchedulerNamed(name) === 0) {
      return this.#reject(conn, `unknown scheduler ${name}`, { op: "drain" });
    }
    this.#send(conn, { cmd: "ack", op: "drain", id: name });
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
    const owners = this.#owners.get(job.owner);
    if (!owners) return;
    for (const owner of owners) {
      this.#sendEvent(owner, encodeMessage(withClientId(owner.scope, message)));
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

  #submit(conn: Conn, message: JobRequestMessage): void {
    this.#records.expect(message.payload); // its `queued` event, emitted in submit, opens its record
    const result = this.#dispatcher.submit({
      owner: conn.owner,
      id: submittedId(this.#auth !== undefined, conn.scope, message.id),
      payload: message.payload,
      idPrefix: assignedIdPrefix(conn.scope),
    });
    this.#records.expect(undefined);
    if (!result.ok) {
      const asRejected = conn.protocol === 2;
      return this.#reject(conn, result.reason, { op: message.cmd, id: message.id, asRejected });
    }
    if (conn.protocol !== 2) return;
    if (result.duplicate) {
      const { ok: _ok, final, ...known } = result;
      const id = toClientId(conn.scope, known.id);
      return this.#send(conn, { cmd: "accepted", ...known, id, ...(final ? { final } : {}) });
    }
    const waiting = result.waiting === undefined ? {} : { waiting: result.waiting };
    this.#send(conn, { cmd: "accepted", id: toClientId(conn.scope, result.id), ...waiting });
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
      });
    }
    if (warning !== undefined) {
      this.dispatchEvent(new BusNoticeEvent(`${conn.id}: ${warning}`, "warning"));
    }
    this.dispatchEvent(new BusRegistrationEvent(conn.id, conn.role, conn.protocol, conn.name));
    if (conn.role === "monitor") this.#monitors.add(conn);
    if (conn.role === "producer" && conn.protocol === 2) {
      const set = this.#owners.get(conn.owner) ?? new Set();
      this.#owners.set(conn.owner, set.add(conn));
    }
    if (conn.role === "scheduler") {
      const socket = conn.socket;
      const seed = conn.protocol === 1;
      this.#dispatcher.addScheduler({
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
      }, message.running);
    }
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
    this.#monitors.delete(conn);
    const owned = this.#owners.get(conn.owner);
    if (owned?.delete(conn) && owned.size === 0) this.#owners.delete(conn.owner);
    if (conn.role === "scheduler" && !this.#closing) {
      this.#dispatcher.removeScheduler(conn.id);
      if (this.#dispatcher.blocked) this.#scheduleRetry();
    }
  }

  /**
   * Queues a job event for {@linkcode BusServer.#forward}, deferred so that the answer to a
   * request goes out before the events it causes; an event nobody would get is dropped here.
   */
  #defer(event: DispatcherJobEvent): void {
    if (!this.#wantsJobEvent(event) && !this.#owners.has(event.owner) && !this.#monitors.size) {
      return;
    }
    if (this.#pendingEvents.push(event) === 1) queueMicrotask(() => this.#forwardPending());
  }

  #forwardPending(): void {
    const events = this.#pendingEvents;
    this.#pendingEvents = [];
    for (const event of events) this.#forward(event);
  }

  #forward(event: DispatcherJobEvent): void {
    if (this.#wantsJobEvent(event)) this.dispatchEvent(new BusJobEvent(event));
    const owners = this.#owners.get(event.owner);
    if (!owners && !this.#monitors.size) return;
    const { owner: _owner, ...wire } = event;
    const text = encodeMessage(wire); // bus-wide ids; a scoped owner gets its own
    for (const conn of owners ?? []) {
      this.#sendEvent(conn, conn.scope ? encodeMessage(withClientId(conn.scope, wire)) : text);
    }
    for (const conn of this.#monitors) this.#sendEvent(conn, text);
  }

  #wantsJobEvent(event: DispatcherJobEvent): boolean {
    return this.listens("job") && (this.#jobEventStates?.has(event.state) ?? true);
  }

  #sendEvent(conn: Conn, text: string): void {
    if (conn.socket.bufferedAmount > this.#maxBuffered) this.#droppedEvents++;
    else this.#sendText(conn, text);
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

  #sendText(conn: Conn, text: string): void {
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
