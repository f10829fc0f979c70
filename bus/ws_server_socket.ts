/**
 * The server side of a WebSocket over a `Deno.Conn` whose opening handshake is done (see
 * `http_front.ts`): RFC 6455 server framing (masked frames in, unmasked out), fragmented
 * messages, ping/pong, an idle ping (like `Deno.upgradeWebSocket`'s `idleTimeout`: a ping after
 * that long without a frame, the connection closed if another such period passes without one),
 * and a close handshake whose wait is bounded: the TCP connection ends `closeTimeoutMs` after
 * our close frame whether the peer answers or not. A message over `maxMessageBytes` closes with
 * 1009, invalid UTF-8 in a text message with 1007, any other protocol error with 1002.
 *
 * It implements the part of `WebSocket` that `BusServer` uses: `readyState`, `bufferedAmount`,
 * `binaryType` (binary always arrives as `ArrayBuffer`), `send`, `close`, `onopen`/`onmessage`/
 * `onerror`/`onclose` and the same events; plus `abort()`, ending the TCP connection at once.
 *
 * Internal to `bus/`: not exported from `bus/mod.ts`.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import {
  encodeClose,
  encodeFrame,
  type FrameReader,
  FrameWriter,
  MessageAssembler,
  WsProtocolError,
} from "./ws_frames.ts";

const encoder = new TextEncoder();

/** Options of {@linkcode ServerWebSocket}. */
export interface ServerWebSocketOptions {
  /** Seconds without a frame before a ping, 0 for none (as `Deno.upgradeWebSocket`'s). */
  idleTimeout?: number;
  /** The largest message accepted (default 64 MiB); larger ones close with 1009. */
  maxMessageBytes?: number;
  /** How long to wait for the peer's close frame before ending the connection (default 2000). */
  closeTimeoutMs?: number;
  /** The subprotocol chosen ("" for none). */
  protocol?: string;
  /** Timers (default: the system clock). */
  clock?: Clock;
}

type Handler<E extends Event> = ((this: ServerWebSocket, event: E) => void) | null;

/**
 * A server-side WebSocket; `http_front.ts` makes it and starts it once the 101 answer is out.
 *
 * @example
 * ```ts
 * import { ServerWebSocket } from "./ws_server_socket.ts";
 * const socket = new ServerWebSocket({ idleTimeout: 30 });
 * console.log(socket.readyState); // 0 (CONNECTING)
 * ```
 */
export class ServerWebSocket extends EventTarget {
  /** The state before `start`. */
  static readonly CONNECTING = 0;
  /** The state while messages flow. */
  static readonly OPEN = 1;
  /** The state once a close frame went out or came in. */
  static readonly CLOSING = 2;
  /** The state once the connection ended. */
  static readonly CLOSED = 3;

  /** Called on `open`. */
  onopen: Handler<Event> = null;
  /** Called on `message`. */
  onmessage: Handler<MessageEvent> = null;
  /** Called on `error`. */
  onerror: Handler<Event> = null;
  /** Called on `close`. */
  onclose: Handler<CloseEvent> = null;
  /** Kept for the `WebSocket` shape: binary messages always arrive as `ArrayBuffer`. */
  binaryType: BinaryType = "arraybuffer";
  /** The subprotocol chosen. */
  readonly protocol: string;

  #state = ServerWebSocket.CONNECTING;
  #conn: Deno.Conn | undefined;
  #clock: Clock;
  #idleMs: number;
  #maxMessageBytes: number;
  #closeTimeoutMs: number;
  readonly #writer = new FrameWriter(() => this.#conn);
  #closeSent = false;
  #closeTimer: TimerId | undefined;
  #idleTimer: TimerId | undefined;
  #heard = true; // a frame came since the last idle tick
  #pinged = false;

  /** @param options See {@linkcode ServerWebSocketOptions}. */
  constructor(options: ServerWebSocketOptions = {}) {
    super();
    this.#clock = options.clock ?? systemClock;
    this.#idleMs = (options.idleTimeout ?? 0) * 1000;
    this.#maxMessageBytes = options.maxMessageBytes ?? 64 * 1_048_576;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 2000;
    this.protocol = options.protocol ?? "";
  }

  /** 0 connecting, 1 open, 2 closing, 3 closed (the `WebSocket` constants). */
  get readyState(): number {
    return this.#state;
  }

  /** Bytes queued and not yet written. */
  get bufferedAmount(): number {
    return this.#writer.buffered;
  }

  /** The largest message accepted. */
  get maxMessageBytes(): number {
    return this.#maxMessageBytes;
  }

  /**
   * Sends a message.
   *
   * @param data Text (a text frame) or bytes (a binary frame).
   * @throws {DOMException} If the socket is still connecting.
   */
  send(data: string | Uint8Array): void {
    if (this.#state === ServerWebSocket.CONNECTING) {
      throw new DOMException("the WebSocket is not open yet", "InvalidStateError");
    }
    if (this.#state !== ServerWebSocket.OPEN) return;
    const frame = typeof data === "string"
      ? encodeFrame(0x1, encoder.encode(data), false)
      : encodeFrame(0x2, data, false);
    this.#enqueue(frame);
  }

  /**
   * Starts the close handshake; the TCP connection ends when the peer answers, or at the latest
   * `closeTimeoutMs` later.
   *
   * @param code The close code (1000, or 3000–4999, or one the server may send).
   * @param reason At most 123 bytes.
   * @throws {SyntaxError} If the reason is too long.
   */
  close(code?: number, reason = ""): void {
    const reasonBytes = encoder.encode(reason);
    if (reasonBytes.length > 123) {
      throw new DOMException("the close reason is over 123 bytes", "SyntaxError");
    }
    if (this.#state === ServerWebSocket.CONNECTING) {
      this.#state = ServerWebSocket.CLOSING;
      return; // start() closes at once
    }
    if (this.#state !== ServerWebSocket.OPEN) return;
    this.#state = ServerWebSocket.CLOSING;
    this.#sendClose(code, reasonBytes);
  }

  /** Ends the TCP connection now, without the close handshake (`close` follows, code 1006). */
  abort(): void {
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
  }

  /**
   * Runs the socket over `conn` after the 101 answer: `open`, messages, then `close`.
   *
   * @param conn The connection.
   * @param reader Its reader (bytes after the request head stay in it).
   * @returns Resolves once the connection ended and `close` was dispatched.
   */
  async start(conn: Deno.Conn, reader: FrameReader): Promise<void> {
    this.#conn = conn;
    let code = 1006, reason = "", clean = false;
    try {
      if (this.#state === ServerWebSocket.CONNECTING) {
        this.#state = ServerWebSocket.OPEN;
        this.#armIdle();
        this.#emit(new Event("open"));
      }
      if (this.#state === ServerWebSocket.CLOSING && !this.#closeSent) {
        this.#sendClose(1000, new Uint8Array());
      }
      ({ code, reason } = await this.#receive(reader));
      clean = true;
    } catch (error) {
      if (
        !(error instanceof Deno.errors.BadResource) && !(error instanceof Deno.errors.Interrupted)
      ) {
        const message = error instanceof Error ? error.message : String(error);
        this.#emit(new ErrorEvent("error", { message, error }));
      }
      if (error instanceof WsProtocolError) {
        this.#state = ServerWebSocket.CLOSING;
        this.#sendClose(error.code, encoder.encode(error.message.slice(0, 100)));
        code = error.code;
        reason = error.message.slice(0, 100);
      }
    } finally {
      if (this.#idleTimer !== undefined) this.#clock.clearTimeout(this.#idleTimer);
      this.#state = ServerWebSocket.CLOSING;
      this.#armCloseTimer(); // bounds the wait for the last writes
      await this.#writer.flushing;
      if (this.#closeTimer !== undefined) this.#clock.clearTimeout(this.#closeTimer);
      this.abort();
      this.#state = ServerWebSocket.CLOSED;
      this.#emit(new CloseEvent("close", { code, reason, wasClean: clean }));
    }
  }

  /** Reads frames until the peer's close frame (or the answer to ours). */
  async #receive(reader: FrameReader): Promise<{ code: number; reason: string }> {
    const assembler = new MessageAssembler(this.#maxMessageBytes, "client");
    for (;;) {
      const frame = await reader.frame();
      if (frame === null) throw new Error("the connection dropped without a close frame");
      this.#heard = true;
      const step = assembler.take(frame);
      if (step.kind === "close") {
        this.#state = ServerWebSocket.CLOSING;
        this.#sendClose(step.code === 1005 ? undefined : step.code, new Uint8Array()); // the echo
        return { code: step.code, reason: step.reason };
      }
      if (step.kind === "ping") {
        if (this.#state === ServerWebSocket.OPEN) {
          this.#enqueue(encodeFrame(0xa, step.payload, false));
        }
      } else if (step.kind === "message" && this.#state === ServerWebSocket.OPEN) {
        this.#emit(new MessageEvent("message", { data: step.data }));
      }
    }
  }

  /** Every `idleTimeout`: a ping if nothing came since the last tick; gone if still nothing. */
  #armIdle(): void {
    if (this.#idleMs <= 0) return;
    this.#idleTimer = this.#clock.setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#state !== ServerWebSocket.OPEN) return;
      if (this.#heard) {
        this.#heard = false;
        this.#pinged = false;
      } else if (!this.#pinged) {
        this.#pinged = true;
        this.#enqueue(encodeFrame(0x9, new Uint8Array(), false));
      } else {
        this.#state = ServerWebSocket.CLOSING;
        this.#sendClose(1001, encoder.encode("no pong"));
        return;
      }
      this.#armIdle();
    }, this.#idleMs);
  }

  #sendClose(code: number | undefined, reason: Uint8Array): void {
    if (this.#closeSent) return;
    this.#closeSent = true;
    this.#enqueue(encodeClose(code, reason, false));
    this.#armCloseTimer();
  }

  /** Ends the connection if the close handshake takes longer than `closeTimeoutMs`. */
  #armCloseTimer(): void {
    if (this.#conn === undefined) return;
    this.#closeTimer ??= this.#clock.setTimeout(() => this.abort(), this.#closeTimeoutMs);
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
