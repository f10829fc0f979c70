/**
 * A minimal RFC 6455 WebSocket client over `Deno.connect` with Nagle's algorithm off.
 *
 * Deno's built-in `WebSocket` client leaves `TCP_NODELAY` off, so a small frame sent right after
 * another waits for the peer's delayed ACK (≈ 40 ms on Linux) unless the peer happens to answer
 * in between: a scheduler reporting `started` then `succeeded` stalled ≈ 43 ms on every job
 * (docs/bench.md, "bus"). This client sets `TCP_NODELAY` and also writes the frames sent in one
 * synchronous run as one write. It keeps the `WebSocket` shape its users need (`readyState`,
 * `send`, `close`, `bufferedAmount`, `onopen`/`onmessage`/`onerror`/`onclose` and the same
 * events), so it replaces `WebSocket` in {@linkcode BusClient}.
 *
 * Scope: `ws:` and `wss:` URLs (`wss:` with a private CA through `caCerts`; `TCP_NODELAY` stays
 * on under TLS, which is started over the TCP connection), text and binary messages (binary
 * arrives as `ArrayBuffer`), fragmented messages from the server, ping/pong, the close
 * handshake, extra headers on the upgrade (a `token` as `Authorization: Bearer …`) and offered
 * subprotocols. No extensions (compression).
 *
 * Internal to `bus/`: not exported from `bus/mod.ts` (a protocol detail of {@linkcode BusClient}'s
 * connection, not this library's API); tests import it directly.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import { checkProtocols, headerLines, refusal, WsRefusedError } from "./ws_handshake.ts";
import {
  encodeClose,
  encodeFrame,
  FrameReader,
  FrameWriter,
  MessageAssembler,
  writeAll,
  WS_GUID as GUID,
  WsProtocolError,
} from "./ws_frames.ts";

const MAX_HEADER_BYTES = 16_384;
const encoder = new TextEncoder();

/** Options for {@linkcode WsClient}. */
export interface WsClientOptions {
  /**
   * Largest message accepted from the server, in bytes; a bigger one fails the connection
   * (close code 1009 sent to the server, `close` event with 1006).
   * @default {67_108_864}
   */
  maxMessageBytes?: number;
  /**
   * How long to wait for the server's side of the close handshake (and for buffered frames to
   * drain) before dropping the connection, in milliseconds.
   * @default {5_000}
   */
  closeTimeoutMs?: number;
  /**
   * How long connecting plus the opening handshake may take before the attempt is dropped
   * (`error`, then `close` with 1006), in milliseconds: a server that accepts the connection but
   * never answers the upgrade does not hold the client forever.
   * @default {10_000}
   */
  openTimeoutMs?: number;
  /**
   * Where the open and close timers come from.
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * A secret sent as `Authorization: Bearer <token>` on the upgrade; visible ASCII only. It
   * appears in no error message.
   * @default {undefined}
   */
  token?: string | undefined;
  /**
   * More headers for the upgrade request (names of letters, digits and `-`; values without line
   * breaks). `Host`, `Upgrade`, `Connection`, `Sec-WebSocket-*` and, with `token`,
   * `Authorization` are the client's own and refused here.
   * @default {{}}
   */
  headers?: Readonly<Record<string, string>> | undefined;
  /**
   * Subprotocols offered in `Sec-WebSocket-Protocol`; the server's choice is
   * {@linkcode WsClient.protocol}, and a choice not offered fails the handshake.
   * @default {[]}
   */
  protocols?: readonly string[] | undefined;
  /**
   * PEM certificates of the CAs trusted for `wss:`, besides the system's roots (a private CA).
   * @default {undefined}
   */
  caCerts?: readonly string[] | undefined;
}

/**
 * A WebSocket client with `TCP_NODELAY` set, shaped like `WebSocket`.
 *
 * It connects at once; `open`, `message` (`MessageEvent`: `data` is a string, or an
 * `ArrayBuffer` for binary frames), `error` (`ErrorEvent` saying what went wrong) and `close`
 * (`CloseEvent`; 1006 when the connection dropped without a close frame) are dispatched as
 * events and to the `on…` handler properties. `close` comes last, once the socket is released.
 *
 * @example
 * ```ts
 * import { WsClient } from "./ws_client.ts";
 * const ws = new WsClient("ws://127.0.0.1:9/");
 * ws.onopen = () => ws.send(JSON.stringify({ cmd: "register", type: "monitor", protocol: 2 }));
 * ws.onmessage = (event) => console.log(event.data);
 * ws.onclose = (event) => console.log("closed", event.code);
 * ws.close(1000, "done");
 * ```
 */
export class WsClient extends EventTarget {
  /** `readyState` while connecting and during the opening handshake. */
  static readonly CONNECTING = 0;
  /** `readyState` while messages can be sent. */
  static readonly OPEN = 1;
  /** `readyState` during the closing handshake. */
  static readonly CLOSING = 2;
  /** `readyState` once the connection is released. */
  static readonly CLOSED = 3;

  /** Called for the `open` event. */
  onopen: ((event: Event) => void) | null = null;
  /** Called for each `message` event. */
  onmessage: ((event: MessageEvent) => void) | null = null;
  /** Called for the `error` event. */
  onerror: ((event: Event) => void) | null = null;
  /** Called for the `close` event. */
  onclose: ((event: CloseEvent) => void) | null = null;

  #url: URL;
  #maxMessageBytes: number;
  #closeTimeoutMs: number;
  #openTimeoutMs: number;
  #state = WsClient.CONNECTING;
  #abort = new AbortController();
  #conn: Deno.Conn | undefined;
  readonly #writer = new FrameWriter(() => this.#conn);
  #closeSent = false;
  #closeTimer: TimerId | undefined;
  #clock: Clock;
  #headers: string; // the extra header lines, each ending in CRLF
  #protocols: readonly string[];
  #protocol = "";
  #caCerts: string[] | undefined;

  /**
   * Opens a connection.
   *
   * @param url A `ws:` or `wss:` URL.
   * @param options See {@linkcode WsClientOptions}.
   * @throws {SyntaxError} If `url` is not a `ws:` or `wss:` URL, or a subprotocol is not a
   * token (a `DOMException`, as `WebSocket` throws).
   * @throws {TypeError} For a `token` or header that cannot go in an HTTP header.
   */
  constructor(url: string | URL, options: WsClientOptions = {}) {
    super();
    const parsed = parseWsUrl(url);
    if (parsed === undefined) {
      throw new DOMException(
        `Cannot create WsClient: not a ws:// or wss:// URL: ${url}`,
        "SyntaxError",
      );
    }
    this.#url = parsed;
    this.#maxMessageBytes = options.maxMessageBytes ?? 67_108_864;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
    this.#openTimeoutMs = options.openTimeoutMs ?? 10_000;
    this.#clock = options.clock ?? systemClock;
    this.#headers = headerLines(options.token, options.headers ?? {});
    this.#protocols = checkProtocols(options.protocols ?? []);
    this.#caCerts = options.caCerts === undefined ? undefined : [...options.caCerts];
    void this.#run();
  }

  /** The URL connected to. */
  get url(): string {
    return this.#url.href;
  }

  /** The subprotocol the server chose (`""` when none). */
  get protocol(): string {
    return this.#protocol;
  }

  /** `CONNECTING` (0), `OPEN` (1), `CLOSING` (2) or `CLOSED` (3). */
  get readyState(): number {
    return this.#state;
  }

  /** Bytes of frames sent but not yet written to the socket. */
  get bufferedAmount(): number {
    return this.#writer.buffered;
  }

  /**
   * Sends a message: a string as a text frame, bytes as a binary frame. Frames sent in one
   * synchronous run go out in one write. Ignored once closing.
   *
   * @param data The message.
   * @throws {DOMException} `InvalidStateError` while still connecting.
   */
  send(data: string | Uint8Array): void {
    if (this.#state === WsClient.CONNECTING) {
      throw new DOMException("Cannot send: the WebSocket is still connecting", "InvalidStateError");
    }
    if (this.#state !== WsClient.OPEN) return;
    if (typeof data === "string") this.#enqueue(encodeFrame(0x1, encoder.encode(data), true));
    else this.#enqueue(encodeFrame(0x2, data, true));
  }

  /**
   * Starts the closing handshake (or abandons a connection still being made). The `close`
   * event follows once the server answered (or `closeTimeoutMs` passed) and the socket is
   * released. No effect when already closing.
   *
   * @param code 1000 or 3000..4999; omitted: no code is sent.
   * @param reason At most 123 bytes of UTF-8.
   * @throws {DOMException} `InvalidAccessError` for another code, `SyntaxError` for a long reason.
   */
  close(code?: number, reason = ""): void {
    if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
      throw new DOMException(
        `Cannot close: code must be 1000 or 3000..4999, got ${code}`,
        "InvalidAccessError",
      );
    }
    const reasonBytes = encoder.encode(reason);
    if (reasonBytes.length > 123) {
      throw new DOMException("Cannot close: the reason is over 123 bytes", "SyntaxError");
    }
    if (this.#state === WsClient.CONNECTING) {
      this.#state = WsClient.CLOSING;
      this.#abort.abort();
      try {
        this.#conn?.close();
      } catch { /* already closed, or handed to TLS: #run closes what is left */ }
      return;
    }
    if (this.#state !== WsClient.OPEN) return;
    this.#state = WsClient.CLOSING;
    this.#sendClose(code, reasonBytes);
  }

  async #run(): Promise<void> {
    let code = 1006, reason = "", clean = false;
    let timedOut = false;
    const openTimer = this.#clock.setTimeout(() => {
      timedOut = true;
      this.#abort.abort();
      try {
        this.#conn?.close();
      } catch { /* already closed */ }
    }, this.#openTimeoutMs);
    try {
      let reader: FrameReader;
      try {
        await this.#connect();
        reader = new FrameReader(this.#conn!, {
          maxFrameBytes: this.#maxMessageBytes,
          masked: false,
        });
        await this.#handshake(reader);
        if (this.#state !== WsClient.CONNECTING) throw new Error("closed while connecting");
      } catch (error) {
        if (!timedOut) throw error;
        throw new Error(`no WebSocket handshake within ${this.#openTimeoutMs} ms`, {
          cause: error,
        });
      } finally {
        this.#clock.clearTimeout(openTimer);
      }
      this.#state = WsClient.OPEN;
      this.#emit(new Event("open"));
      ({ code, reason } = await this.#receive(reader));
      clean = true;
    } catch (error) {
      this.#emit(new ErrorEvent("error", { message: errorMessage(error, this.#url), error }));
      if (error instanceof WsProtocolError && this.#state === WsClient.OPEN) {
        this.#sendClose(error.code, encoder.encode(error.message.slice(0, 100)));
      }
    } finally {
      this.#state = WsClient.CLOSING;
      this.#armCloseTimer(); // bounds the wait for the last writes
      await this.#writer.flushing;
      if (this.#closeTimer !== undefined) this.#clock.clearTimeout(this.#closeTimer);
      try {
        this.#conn?.close();
      } catch { /* already closed */ }
      this.#state = WsClient.CLOSED;
      this.#emit(new CloseEvent("close", { code, reason, wasClean: clean }));
    }
  }

  async #connect(): Promise<void> {
    const url = this.#url;
    const secure = url.protocol === "wss:";
    const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(url.port) || (secure ? 443 : 80);
    const tcp = await Deno.connect({ hostname, port, signal: this.#abort.signal });
    this.#conn = tcp;
    this.#abort.signal.throwIfAborted(); // close() came as the connection was made
    tcp.setNoDelay(true); // TLS runs over this connection: the option stays on
    if (secure) {
      const tls = await Deno.startTls(
        tcp,
        this.#caCerts === undefined ? { hostname } : { hostname, caCerts: this.#caCerts },
      );
      this.#conn = tls;
      this.#abort.signal.throwIfAborted(); // close() came as TLS was set up
      try {
        await tls.handshake();
      } catch (error) {
        if (this.#abort.signal.aborted) throw error;
        const detail = error instanceof Error ? error.message : String(error);
        throw new WsRefusedError(`TLS handshake with ${url.host} failed: ${detail}`, undefined, {
          cause: error,
        });
      }
    }
    this.#abort.signal.throwIfAborted();
  }

  async #handshake(reader: FrameReader): Promise<void> {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const url = this.#url;
    await writeAll(
      this.#conn!,
      encoder.encode(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
          "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
          (this.#protocols.length > 0
            ? `Sec-WebSocket-Protocol: ${this.#protocols.join(", ")}\r\n`
            : "") +
          `${this.#headers}\r\n`,
      ),
    );
    const [status = "", ...lines] = (await readHeader(reader)).split("\r\n");
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon > 0) {
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
    }
    if (!/^HTTP\/1\.1 101 /.test(status)) {
      throw await refusal(status, headers, (n) => reader.bytes(n));
    }
    const chosen = headers.get("sec-websocket-protocol") ?? "";
    if (chosen !== "" && !this.#protocols.includes(chosen)) {
      throw new Error("the server chose a subprotocol that was not offered");
    }
    this.#protocol = chosen;
    const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    if (
      headers.get("upgrade")?.toLowerCase() !== "websocket" ||
      !/\bupgrade\b/i.test(headers.get("connection") ?? "") ||
      headers.get("sec-websocket-accept") !== accept
    ) {
      throw new Error("the server's upgrade response is not a valid WebSocket handshake");
    }
  }

  /** Reads frames until the server's close frame; returns its code and reason. */
  async #receive(reader: FrameReader): Promise<{ code: number; reason: string }> {
    const assembler = new MessageAssembler(this.#maxMessageBytes, "server");
    for (;;) {
      const frame = await reader.frame();
      if (frame === null) throw new Error("the connection dropped without a close frame");
      const step = assembler.take(frame);
      if (step.kind === "close") {
        this.#state = WsClient.CLOSING;
        this.#sendClose(step.code === 1005 ? undefined : step.code, new Uint8Array()); // the echo
        return { code: step.code, reason: step.reason };
      }
      if (step.kind === "ping") {
        if (this.#state === WsClient.OPEN) this.#enqueue(encodeFrame(0xa, step.payload, true));
      } else if (step.kind === "message" && this.#state === WsClient.OPEN) {
        this.#emit(new MessageEvent("message", { data: step.data }));
      }
    }
  }

  #sendClose(code: number | undefined, reason: Uint8Array): void {
    if (this.#closeSent) return;
    this.#closeSent = true;
    this.#enqueue(encodeClose(code, reason, true));
    this.#armCloseTimer();
  }

  /** Drops the connection if the closing handshake takes longer than `closeTimeoutMs`. */
  #armCloseTimer(): void {
    this.#closeTimer ??= this.#clock.setTimeout(() => {
      try {
        this.#conn?.close();
      } catch { /* already closed */ }
    }, this.#closeTimeoutMs);
  }

  #enqueue(frame: Uint8Array): void {
    this.#writer.enqueue(frame);
  }

  #emit(event: Event): void {
    const handler =
      (this as unknown as Record<string, ((event: Event) => void) | null>)[`on${event.type}`];
    try {
      handler?.call(this, event);
    } catch (error) {
      reportError(error); // as an event listener's exception would be
    }
    this.dispatchEvent(event);
  }
}

/** The server's response head (the bytes after it stay buffered). */
async function readHeader(reader: FrameReader): Promise<string> {
  let head: string | null;
  try {
    head = await reader.head(MAX_HEADER_BYTES);
  } catch (error) {
    if (error instanceof RangeError) throw new Error("the server's response header is too long");
    throw error;
  }
  if (head === null) throw new Error("the server closed the connection during the handshake");
  return head;
}

/**
 * Parses a WebSocket URL.
 *
 * @param url The URL.
 * @returns The parsed URL if it is a `ws:` or `wss:` URL, else `undefined`.
 *
 * @example
 * ```ts
 * import { parseWsUrl } from "./ws_client.ts";
 * console.log(parseWsUrl("ws://127.0.0.1:8101")?.port, parseWsUrl("http://x")); // "8101" undefined
 * ```
 */
export function parseWsUrl(url: string | URL): URL | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  return parsed.protocol === "ws:" || parsed.protocol === "wss:" ? parsed : undefined;
}

function errorMessage(error: unknown, url: URL): string {
  const detail = error instanceof Error ? error.message : String(error);
  return error instanceof Deno.errors.ConnectionRefused || error instanceof Deno.errors.NotFound
    ? `cannot connect to ${url.href}: ${detail}`
    : detail;
}
