/**
 * The bus client shared by the producer and the scheduler CLI: one WebSocket connection to the
 * bus that registers on every (re)connect and reconnects with capped, jittered exponential
 * backoff when the bus goes away or is not up yet.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import { backoffDelay, type BackoffOptions, resolveBackoff } from "./backoff.ts";
import { TypedEventTarget } from "../core/typed_event_target.ts";
import { parseWsUrl, WsClient } from "./ws_client.ts";
import { checkToken, WsRefusedError } from "./ws_handshake.ts";
import type { ParseResult, ServerMessage } from "./protocol.ts";
import { validateServerMessage } from "./server_message.ts";

/**
 * A message from the bus as it came: a parsed JSON object (its `cmd` says what it is; a seed
 * bus's bare payload for a scheduler has none). {@linkcode BusMessageEvent.parsed} is the same
 * message validated and typed.
 */
export type BusMessage = { cmd?: unknown; [key: string]: unknown };

/** Options for {@linkcode BusClient}. */
export interface BusClientOptions {
  /**
   * Returns the register message; called on every (re)connect, so that it can carry current
   * state (e.g. a scheduler's running jobs). It is the first frame of every connection.
   */
  register: () => object;
  /**
   * How long to wait between attempts; see {@linkcode BackoffOptions}.
   * @default {{ initialMs: 100, maxMs: 5000, factor: 2, jitter: "full" }}
   */
  backoff?: BackoffOptions | undefined;
  /**
   * Closes the client when aborted.
   * @default {undefined}
   */
  signal?: AbortSignal | undefined;
  /**
   * Where time and the reconnect timers come from.
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Uniform numbers in `[0, 1)` for the jitter.
   * @default {Math.random}
   */
  random?: (() => number) | undefined;
  /**
   * Connect with {@linkcode WsClient}, which turns Nagle's algorithm off (`true`), or with
   * Deno's built-in `WebSocket`, which leaves it on (`false`): then a small frame sent right
   * after another may wait ≈ 40 ms for the bus's delayed ACK.
   * @default {true}
   */
  noDelay?: boolean;
  /**
   * After a protocol 2 `register` (one whose `protocol` is 2), how long to wait for the bus's
   * `registered` before concluding that the bus is the seed's (which never answers) and
   * dispatching `seedbus`; 0 turns the detection off. A frame without `cmd` before `registered`
   * (a seed bus's bare payload) concludes it at once.
   * @default {2000}
   */
  seedBusAfterMs?: number | undefined;
  /**
   * A secret presented on every connection as `Authorization: Bearer <token>` (a bus with
   * `--auth`); never in an error message. Needs `noDelay` (the default).
   * @default {undefined}
   */
  token?: string | undefined;
  /**
   * PEM certificates of the CAs trusted for a `wss:` bus, besides the system's roots (a private
   * CA). Needs `noDelay` (the default).
   * @default {undefined}
   */
  caCerts?: readonly string[] | undefined;
}

/** Dispatched when a connection opens and its register message has been sent. */
export class BusOpenEvent extends Event {
  /** Whether an earlier connection of this client had opened (this one is a reconnection). */
  readonly reconnect: boolean;
  /** The URL of the bus this connection is to (one of the client's URLs). */
  readonly url: string;
  /**
   * Creates the event.
   *
   * @param reconnect See {@linkcode BusOpenEvent.reconnect}.
   * @param url See {@linkcode BusOpenEvent.url}.
   */
  constructor(reconnect: boolean, url = "") {
    super("open");
    this.reconnect = reconnect;
    this.url = url;
  }
}

/**
 * A message from the bus: type `"message"` for every message, and also `"registered"`
 * (dispatched first) for the bus's `{"cmd":"registered"}` answer.
 */
export class BusMessageEvent extends Event {
  /** The message as it came (a JSON object). */
  readonly message: BusMessage;
  /**
   * The message validated: a typed {@linkcode ServerMessage}, or why it is not one (a seed
   * bus's bare payload is not).
   */
  readonly parsed: ParseResult<ServerMessage>;
  /**
   * Creates the event.
   *
   * @param type `"message"` or `"registered"`.
   * @param message The message as it came.
   * @param parsed The message validated (computed from `message` when not given).
   */
  constructor(
    type: "message" | "registered",
    message: BusMessage,
    parsed: ParseResult<ServerMessage> = validateServerMessage(message),
  ) {
    super(type);
    this.message = message;
    this.parsed = parsed;
  }
}

/**
 * Dispatched (type `"seedbus"`) at most once per connection when the bus turns out to be the
 * seed's Python bus: no `registered` came within `seedBusAfterMs` of a protocol 2 `register`,
 * or a frame without `cmd` (a bare payload) came first. A seed bus ignores `protocol`: it takes
 * `{"cmd":"job_request","payload":...}` from producers without answering, and sends schedulers
 * bare payloads (`docs/protocol.md`, "Protocol 1"). The connection stays open; its users switch
 * to the seed's protocol.
 */
export class BusSeedBusEvent extends Event {
  /** How it was recognised: `"no 'registered' within 2000 ms"` or `"a bare payload came"`. */
  readonly reason: string;
  /**
   * Creates the event.
   *
   * @param reason See {@linkcode BusSeedBusEvent.reason}.
   */
  constructor(reason: string) {
    super("seedbus");
    this.reason = reason;
  }
}

/** Dispatched when an open connection is lost (not when {@linkcode BusClient.close} is called). */
export class BusCloseEvent extends Event {
  /** The WebSocket close code (1006 when the connection dropped). */
  readonly code: number;
  /** The close reason the bus gave, if any. */
  readonly reason: string;
  /** The URL of the bus that was lost. */
  readonly url: string;
  /**
   * Creates the event.
   *
   * @param code See {@linkcode BusCloseEvent.code}.
   * @param reason See {@linkcode BusCloseEvent.reason}.
   * @param url See {@linkcode BusCloseEvent.url}.
   */
  constructor(code: number, reason: string, url = "") {
    super("close");
    this.code = code;
    this.reason = reason;
    this.url = url;
  }
}

/**
 * Dispatched when a reconnect is scheduled: after a lost connection or a failed attempt. With
 * several URLs, the next attempt goes to the next URL at once (`delayMs` 0) until every URL
 * failed in a row; then the client backs off before going round again.
 */
export class BusReconnectingEvent extends Event {
  /** Retries since the last stable connection, from 1. */
  readonly attempt: number;
  /** How long the client waits before this attempt, in milliseconds. */
  readonly delayMs: number;
  /** The URL this attempt goes to. */
  readonly url: string;
  /** The URL that failed or was lost, which this attempt moves away from (may equal `url`). */
  readonly from: string;
  /**
   * Creates the event.
   *
   * @param attempt See {@linkcode BusReconnectingEvent.attempt}.
   * @param delayMs See {@linkcode BusReconnectingEvent.delayMs}.
   * @param url See {@linkcode BusReconnectingEvent.url}.
   * @param from See {@linkcode BusReconnectingEvent.from}; defaults to `url`.
   */
  constructor(attempt: number, delayMs: number, url = "", from = url) {
    super("reconnecting");
    this.attempt = attempt;
    this.delayMs = delayMs;
    this.url = url;
    this.from = from;
  }
}

/**
 * Something went wrong that the client recovers from: a connection attempt failed, the socket
 * errored, or the bus sent a frame that is not a JSON object (it is skipped).
 */
export class BusErrorEvent extends Event {
  /** What went wrong. */
  readonly error: Error;
  /**
   * Whether the bus or TLS refused the connection (a certificate not trusted, a `4xx` answer to
   * the upgrade, such as `401` for a missing or unknown token): retrying will not help until
   * someone changes something, so a CLI says it even without `--debug`. A `5xx` answer (`503`
   * for too many connections) is not a refusal: it may pass.
   */
  readonly refused: boolean;
  /**
   * Creates the event.
   *
   * @param error See {@linkcode BusErrorEvent.error}.
   * @param refused See {@linkcode BusErrorEvent.refused}.
   */
  constructor(error: Error, refused = false) {
    super("error");
    this.error = error;
    this.refused = refused;
  }
}

/** The events of a {@linkcode BusClient}, by type. */
export interface BusClientEventMap {
  /** A connection opened and registered (the register frame is sent). */
  open: BusOpenEvent;
  /** The bus answered the register message with `{"cmd":"registered"}`. */
  registered: BusMessageEvent;
  /** The bus is the seed's: it never answers `registered` (see {@linkcode BusSeedBusEvent}). */
  seedbus: BusSeedBusEvent;
  /** Any message from the bus. */
  message: BusMessageEvent;
  /** An open connection was lost. */
  close: BusCloseEvent;
  /** A reconnect attempt is scheduled. */
  reconnecting: BusReconnectingEvent;
  /** A recoverable error. */
  error: BusErrorEvent;
}

/**
 * A reconnecting WebSocket client of the bus. It sends the register message first on every
 * connection, parses the bus's JSON messages into events, and, when the connection fails or is
 * lost, retries after a capped exponential backoff with full jitter; the retry count restarts
 * once a connection has stayed up for `backoff.maxMs`. It never throws because the bus is down:
 * {@linkcode BusClient.send} returns `false` and the caller keeps what it could not send.
 *
 * Given several URLs (buses of one cluster), it connects to the first that answers: a failed
 * attempt or a lost connection moves to the next URL at once, and only once every URL failed in
 * a row does it wait (the backoff's step counts such rounds). {@linkcode BusClient.url} is the
 * URL it is on (or trying).
 *
 * @example
 * ```ts
 * import { BusClient } from "./client.ts";
 * await using client = new BusClient(["ws://127.0.0.1:9", "ws://127.0.0.1:10"], {
 *   register: () => ({ cmd: "register", type: "producer", protocol: 2, name: "p1" }),
 * });
 * client.addEventListener("open", (event) => console.log(`connected to ${event.url}`));
 * client.addEventListener("message", (event) => console.log(event.message));
 * console.log(client.url); // "ws://127.0.0.1:9": the first, until it fails
 * console.log(client.send({ cmd: "ping" })); // false: not started, not connected
 * ```
 */
export class BusClient extends TypedEventTarget<BusClientEventMap> implements AsyncDisposable {
  #urls: readonly string[];
  #index = 0; // the URL connected to, or being tried
  #register: () => object;
  #backoff: Required<BackoffOptions>;
  #clock: Clock;
  #random: () => number;
  #noDelay: boolean;
  #seedBusAfterMs: number;
  #wsOptions: { token?: string; caCerts?: readonly string[] } = {};
  #seedTimer: TimerId | undefined;
  #answered = false; // this connection got `registered`, or was found to be a seed bus
  #seedBus = false;
  #signal: AbortSignal | undefined;
  #onAbort = (): void => void this.close();
  #state: "idle" | "connecting" | "open" | "waiting" | "closed" = "idle";
  #ws: WsClient | WebSocket | undefined;
  #socketClosed: Promise<void> = Promise.resolve(); // settles when the latest socket closed
  #timer: TimerId | undefined;
  #attempt = 0; // retries since the last stable connection
  #openedAt = 0;
  #everOpened = false;
  #closed: Promise<void> | undefined;

  /**
   * Creates a client; it connects on {@linkcode BusClient.start}.
   *
   * @param url The bus's WebSocket URL, e.g. `ws://127.0.0.1:8101`, or several (the buses of one
   * cluster, tried in this order); the token and CA apply to each.
   * @param options See {@linkcode BusClientOptions}.
   * @throws {TypeError} If `url` is not a `ws:` or `wss:` URL (or a list is empty or holds one
   * that is not), `register` is not a function,
   * `token` cannot go in a header, or `token` or `caCerts` come with `noDelay: false`.
   * @throws {RangeError} If the backoff options or `seedBusAfterMs` are invalid.
   */
  constructor(url: string | readonly string[], options: BusClientOptions) {
    super();
    this.#urls = checkUrls(url);
    if (typeof options?.register !== "function") {
      throw new TypeError("Cannot create BusClient: 'register' must be a function");
    }
    this.#register = options.register;
    this.#backoff = resolveBackoff(options.backoff);
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#noDelay = options.noDelay ?? true;
    this.#seedBusAfterMs = options.seedBusAfterMs ?? 2000;
    if (!Number.isFinite(this.#seedBusAfterMs) || this.#seedBusAfterMs < 0) {
      throw new RangeError(
        `Cannot create BusClient: 'seedBusAfterMs' must be a finite number >= 0, got ${this.#seedBusAfterMs}`,
      );
    }
    this.#signal = options.signal;
    if (options.token !== undefined) this.#wsOptions.token = options.token;
    if (options.caCerts !== undefined) this.#wsOptions.caCerts = options.caCerts;
    if (!this.#noDelay && Object.keys(this.#wsOptions).length > 0) {
      throw new TypeError("Cannot create BusClient: 'token' and 'caCerts' need 'noDelay: true'");
    }
    if (options.token !== undefined) checkToken(options.token, "BusClient");
  }

  /** Whether a connection is open (and its register message sent). */
  get connected(): boolean {
    return this.#state === "open";
  }

  /** Whether the current connection is to a seed bus (see {@linkcode BusSeedBusEvent}). */
  get seedBus(): boolean {
    return this.#seedBus;
  }

  /** The bus URL the client is on: connected to, or trying (the first one before `start`). */
  get url(): string {
    return this.#urls[this.#index] ?? "";
  }

  /** Every bus URL the client was given, in the order it tries them. */
  get urls(): readonly string[] {
    return this.#urls;
  }

  /**
   * Starts connecting. No effect if already started or closed, or if the signal is aborted
   * (the client is then closed).
   */
  start(): void {
    if (this.#state !== "idle") return;
    if (this.#signal?.aborted) {
      void this.close();
      return;
    }
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#connect();
  }

  /**
   * Sends one message as a JSON text frame.
   *
   * @param message Any JSON-serializable value.
   * @returns `true` if it was handed to the open socket; `false` when not connected (the
   * caller keeps it and may send it again after the next `open`). A `true` does not prove
   * delivery: the connection may still drop before the bus reads it.
   */
  send(message: unknown): boolean {
    if (this.#state !== "open" || this.#ws?.readyState !== WsClient.OPEN) return false;
    try {
      this.#ws.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Closes the connection and stops reconnecting; resolves once the socket is closed.
   * Idempotent. No `close` event is dispatched for it.
   *
   * @returns A promise that resolves when nothing of the client remains pending.
   */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#state = "closed";
    this.#signal?.removeEventListener("abort", this.#onAbort);
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopSeedTimer();
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws && ws.readyState !== WsClient.CLOSED) ws.close(1000, "client closing");
    this.#closed = this.#socketClosed;
    return this.#closed;
  }

  /** Same as {@linkcode BusClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #connect(): void {
    this.#timer = undefined;
    this.#state = "connecting";
    const url = this.url;
    const ws = this.#noDelay ? new WsClient(url, this.#wsOptions) : new WebSocket(url);
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#socketClosed = promise;
    this.#ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      opened = true;
      this.#opened(ws);
    };
    ws.onmessage = (event: MessageEvent) => {
      if (this.#ws === ws) this.#receive(event.data);
    };
    ws.onerror = (event: Event) => {
      if (this.#ws !== ws) return;
      const detail = event instanceof ErrorEvent ? event.message : "WebSocket error";
      const error = event instanceof ErrorEvent ? event.error : undefined;
      // 5xx (`503 too many connections`) may pass: not a refusal
      const refused = error instanceof WsRefusedError &&
        !(error.status !== undefined && error.status >= 500);
      this.#fail(undefined, opened ? detail : `cannot connect to ${url}: ${detail}`, refused);
    };
    ws.onclose = (event: CloseEvent) => {
      resolve();
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      this.#stopSeedTimer();
      if (opened) {
        if (this.#clock.now() - this.#openedAt >= this.#backoff.maxMs) this.#attempt = 0;
        this.#state = "waiting";
        this.dispatchEvent(new BusCloseEvent(event.code, event.reason, url));
      }
      if (this.#state === "closed") return; // a listener closed the client
      this.#scheduleReconnect();
    };
  }

  /** Registers on a connection that just opened. */
  #opened(ws: WsClient | WebSocket): void {
    this.#openedAt = this.#clock.now();
    let register: unknown, text: string;
    try {
      register = this.#register();
      text = JSON.stringify(register);
    } catch (error) {
      this.#fail(error, "the register callback failed");
      ws.close(4000, "register failed");
      return;
    }
    ws.send(text);
    this.#awaitAnswer(register);
    this.#state = "open";
    const reconnect = this.#everOpened;
    this.#everOpened = true;
    this.dispatchEvent(new BusOpenEvent(reconnect, this.url));
  }

  /** Parses a frame; a JSON object is dispatched, anything else reported as an error. */
  #receive(data: unknown): void {
    let message: unknown;
    try {
      message = JSON.parse(String(data));
    } catch (error) {
      this.#fail(error, "the bus sent a frame that is not JSON");
      return;
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      this.#fail(undefined, `the bus sent a frame that is not a JSON object: ${data}`);
      return;
    }
    this.#dispatchMessage(message as BusMessage);
  }

  /** Starts the seed-bus detection for a connection that sent `register`. */
  #awaitAnswer(register: unknown): void {
    this.#seedBus = false;
    const v2 = (register as { protocol?: unknown } | null)?.protocol === 2;
    this.#answered = !v2 || this.#seedBusAfterMs === 0;
    if (this.#answered) return;
    const ms = this.#seedBusAfterMs;
    this.#seedTimer = this.#clock.setTimeout(() => {
      this.#seedTimer = undefined;
      this.#foundSeedBus(`no 'registered' within ${ms} ms`);
    }, ms);
  }

  #dispatchMessage(message: BusMessage): void {
    if (message.cmd === "registered") { // a late one, too, proves a bus that is not the seed's
      this.#answered = true;
      this.#seedBus = false;
      this.#stopSeedTimer();
    } else if (!this.#answered && message.cmd === undefined) {
      this.#foundSeedBus("a bare payload came");
    }
    const parsed = validateServerMessage(message);
    if (message.cmd === "registered") {
      this.dispatchEvent(new BusMessageEvent("registered", message, parsed));
    }
    this.dispatchEvent(new BusMessageEvent("message", message, parsed));
  }

  #foundSeedBus(reason: string): void {
    this.#answered = true;
    this.#stopSeedTimer();
    this.#seedBus = true;
    this.dispatchEvent(new BusSeedBusEvent(reason));
  }

  #stopSeedTimer(): void {
    if (this.#seedTimer !== undefined) this.#clock.clearTimeout(this.#seedTimer);
    this.#seedTimer = undefined;
  }

  /**
   * Schedules the next attempt, at the next URL: at once while some URL has not failed in this
   * round, else after the backoff of the rounds failed so far (one URL: every retry is a round).
   */
  #scheduleReconnect(): void {
    this.#attempt++;
    const from = this.url;
    const n = this.#urls.length;
    this.#index = (this.#index + 1) % n;
    const delayMs = this.#attempt % n === 0
      ? backoffDelay(this.#attempt / n, this.#backoff, this.#random)
      : 0;
    this.#state = "waiting";
    this.#timer = this.#clock.setTimeout(() => this.#connect(), delayMs);
    this.dispatchEvent(new BusReconnectingEvent(this.#attempt, delayMs, this.url, from));
  }

  #fail(cause: unknown, message: string, refused = false): void {
    const detail = cause instanceof Error ? `${message}: ${cause.message}` : message;
    this.dispatchEvent(new BusErrorEvent(new Error(detail, { cause }), refused));
  }
}

/** The URL or URLs of a {@linkcode BusClient}, checked: a non-empty list of `ws:`/`wss:` URLs. */
function checkUrls(url: string | readonly string[]): readonly string[] {
  const urls = typeof url === "string" ? [url] : Array.isArray(url) ? [...url] : undefined;
  if (urls === undefined || urls.length === 0) {
    throw new TypeError(
      "Cannot create BusClient: 'url' must be a ws:// or wss:// URL or a non-empty list of them",
    );
  }
  urls.forEach((one, i) => {
    if (typeof one === "string" && parseWsUrl(one) !== undefined) return;
    const which = urls.length === 1 ? "'url'" : `'url[${i}]'`;
    throw new TypeError(
      `Cannot create BusClient: ${which} must be a ws:// or wss:// URL, got ${one}`,
    );
  });
  return Object.freeze(urls);
}
