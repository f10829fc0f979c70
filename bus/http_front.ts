/**
 * The bus's HTTP/1.1 front over `Deno.listen` / `Deno.listenTls`, in place of `Deno.serve`,
 * which has no header-read timeout (denoland/deno#3515): a connection must finish its request
 * head within `headerTimeoutMs` (default 10 s; the TLS handshake counts) and in at most
 * `maxHeadBytes` (16 KiB, else 431), or it is closed. Each request is handed to the handler as
 * a standard `Request` with the remote address; the answer is written with `Connection: close`
 * (one request per connection: the bus's clients make one upgrade or one GET). An upgrade
 * answered with {@linkcode HttpFront.upgrade}'s response becomes a {@linkcode ServerWebSocket}
 * over the same connection.
 *
 * Internal to `bus/`: not exported from `bus/mod.ts`.
 *
 * @module
 */

import { type Clock, systemClock } from "../core/clock.ts";
import { FrameReader, writeAll, WS_GUID } from "./ws_frames.ts";
import { ServerWebSocket, type ServerWebSocketOptions } from "./ws_server_socket.ts";

const encoder = new TextEncoder();
const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** Options of {@linkcode HttpFront}. */
export interface HttpFrontOptions {
  /** The address to bind. */
  hostname: string;
  /** The port (0: any free one). */
  port: number;
  /** PEM certificate and key: serve TLS. */
  tls?: { cert: string; key: string } | undefined;
  /** Time for a connection to finish its request head (default 10,000 ms). */
  headerTimeoutMs?: number;
  /** The largest request head (default 16,384 bytes); larger → 431. */
  maxHeadBytes?: number;
  /** The largest WebSocket frame read (a larger one closes the socket with 1009). */
  maxFrameBytes?: number;
  /** Timers (default: the system clock). */
  clock?: Clock;
}

/** What the handler learns besides the request. */
export interface HttpFrontInfo {
  /** The peer's address. */
  remoteAddr: Deno.NetAddr;
}

/** The request handler. */
export type HttpFrontHandler = (
  request: Request,
  info: HttpFrontInfo,
) => Response | Promise<Response>;

/** Options of {@linkcode HttpFront.upgrade}. */
export interface UpgradeOptions {
  /** The subprotocol to answer with. */
  protocol?: string;
  /** Seconds without a frame before a ping; 0: none. */
  idleTimeout?: number;
}

interface Pending {
  socket: ServerWebSocket;
  accept: string;
}

/**
 * An HTTP/1.1 server with a header deadline and WebSocket upgrades.
 *
 * @example
 * ```ts
 * import { HttpFront } from "./http_front.ts";
 * const front = new HttpFront({ hostname: "127.0.0.1", port: 0 }, () => new Response("hi"));
 * const addr = front.listen();
 * console.log(await (await fetch(`http://127.0.0.1:${addr.port}/`)).text()); // "hi"
 * await front.close();
 * ```
 */
export class HttpFront {
  #options: HttpFrontOptions;
  #handler: HttpFrontHandler;
  #clock: Clock;
  #headerTimeoutMs: number;
  #maxHeadBytes: number;
  #listener: Deno.Listener | undefined;
  #loop: Promise<void> | undefined;
  #conns = new Set<Deno.Conn>(); // every open connection
  #tasks = new Set<Promise<void>>();
  #upgrades = new WeakMap<Response, Pending>();
  #closed = false;

  /**
   * @param options See {@linkcode HttpFrontOptions}.
   * @param handler Answers each request.
   */
  constructor(options: HttpFrontOptions, handler: HttpFrontHandler) {
    this.#options = options;
    this.#handler = handler;
    this.#clock = options.clock ?? systemClock;
    this.#headerTimeoutMs = options.headerTimeoutMs ?? 10_000;
    this.#maxHeadBytes = options.maxHeadBytes ?? 16_384;
  }

  /** The bound address once listening. */
  get addr(): Deno.NetAddr | undefined {
    return this.#listener?.addr as Deno.NetAddr | undefined;
  }

  /** How many connections are open (in their head, answered, or upgraded). */
  get connections(): number {
    return this.#conns.size;
  }

  /**
   * Binds and starts accepting.
   *
   * @returns The bound address.
   */
  listen(): Deno.NetAddr {
    const { hostname, port, tls } = this.#options;
    this.#listener = tls
      ? Deno.listenTls({ hostname, port, cert: tls.cert, key: tls.key })
      : Deno.listen({ hostname, port });
    this.#loop = this.#acceptLoop(this.#listener);
    return this.#listener.addr as Deno.NetAddr;
  }

  /**
   * Answers a WebSocket upgrade (as `Deno.upgradeWebSocket`): return `response` from the handler;
   * `socket` opens once the 101 answer is written.
   *
   * @param request The upgrade request.
   * @param options See {@linkcode UpgradeOptions}.
   * @returns The socket and the response.
   * @throws {TypeError} If the request is not a valid WebSocket upgrade.
   */
  upgrade(
    request: Request,
    options: UpgradeOptions & Pick<ServerWebSocketOptions, "maxMessageBytes"> = {},
  ): { socket: ServerWebSocket; response: Response } {
    const key = request.headers.get("sec-websocket-key") ?? "";
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      throw new TypeError("Invalid Header: 'upgrade' header must contain 'websocket'");
    }
    if (request.headers.get("sec-websocket-version") !== "13") {
      throw new TypeError("Invalid Header: 'sec-websocket-version' header must be '13'");
    }
    if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) {
      throw new TypeError("Invalid Header: 'sec-websocket-key' header must be set");
    }
    const socket = new ServerWebSocket({
      ...options,
      ...(this.#options.maxFrameBytes === undefined
        ? {}
        : { maxMessageBytes: options.maxMessageBytes ?? this.#options.maxFrameBytes }),
      clock: this.#clock,
    });
    const response = new Response(null, { status: 200 }); // a marker: 101 is written by hand
    this.#upgrades.set(response, { socket, accept: key });
    return { socket, response };
  }

  /**
   * Stops accepting, ends every connection still in its head or answer, and waits for every
   * connection's task (upgraded sockets end on their own: close them first).
   *
   * @returns Resolves once everything ended.
   */
  async close(): Promise<void> {
    this.#closed = true;
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
    await this.#loop;
    for (const conn of this.#conns) closeConn(conn);
    await Promise.all([...this.#tasks]);
  }

  async #acceptLoop(listener: Deno.Listener): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (this.#closed || error instanceof Deno.errors.BadResource) return;
        continue; // a failed accept (EMFILE, a broken TLS handshake) does not stop the server
      }
      if (this.#closed) {
        closeConn(conn);
        return;
      }
      this.#conns.add(conn);
      const task = this.#serve(conn).finally(() => {
        this.#conns.delete(conn);
        closeConn(conn);
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    try {
      (conn as Partial<Deno.TcpConn>).setNoDelay?.(true);
    } catch { /* not TCP */ }
    const reader = new FrameReader(conn, {
      maxFrameBytes: this.#options.maxFrameBytes ?? 64 * 1_048_576,
      masked: true,
    });
    const timer = this.#clock.setTimeout(() => closeConn(conn), this.#headerTimeoutMs);
    let head: string | null;
    try {
      head = await reader.head(this.#maxHeadBytes);
    } catch (error) {
      this.#clock.clearTimeout(timer);
      if (error instanceof RangeError) {
        await answer(conn, new Response("request header too large\n", { status: 431 }));
      }
      return;
    }
    this.#clock.clearTimeout(timer);
    if (head === null) return;
    const request = parseHead(head, this.#options.tls !== undefined);
    if (typeof request === "string") {
      await answer(conn, new Response(`${request}\n`, { status: 400 }));
      return;
    }
    const response = await this.#respond(request, conn);
    const pending = this.#upgrades.get(response);
    if (pending === undefined) return answer(conn, response);
    await this.#open(conn, reader, pending);
  }

  async #respond(request: Request, conn: Deno.Conn): Promise<Response> {
    try {
      return await this.#handler(request, { remoteAddr: conn.remoteAddr as Deno.NetAddr });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return new Response(`${message}\n`, { status: error instanceof TypeError ? 400 : 500 });
    }
  }

  async #open(conn: Deno.Conn, reader: FrameReader, pending: Pending): Promise<void> {
    const digest = await crypto.subtle.digest("SHA-1", encoder.encode(pending.accept + WS_GUID));
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    const protocol = pending.socket.protocol;
    const head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
      `Connection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
      (protocol === "" ? "" : `Sec-WebSocket-Protocol: ${protocol}\r\n`) + "\r\n";
    try {
      await writeAll(conn, encoder.encode(head));
    } catch {
      closeConn(conn); // the socket still opens and closes at once (1006)
    }
    await pending.socket.start(conn, reader);
  }
}

/**
 * A request head as a `Request`, or why it is not one.
 *
 * @param head The head without its blank line.
 * @param secure Whether it came over TLS.
 * @returns The request, or a reason for a 400.
 */
function parseHead(head: string, secure: boolean): Request | string {
  const [line = "", ...lines] = head.split("\r\n");
  const match = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(line);
  if (!match) return "bad request line";
  const headers = new Headers();
  try {
    for (const field of lines) {
      const colon = field.indexOf(":");
      if (colon <= 0) return "bad header line";
      headers.append(field.slice(0, colon).trim(), field.slice(colon + 1).trim());
    }
  } catch {
    return "bad header";
  }
  const host = headers.get("host") ?? "localhost";
  const target = match[2]!; // the regex's second group always matches
  try {
    const url = new URL(
      target.startsWith("/") ? target : "/",
      `${secure ? "https" : "http"}://${host}`,
    );
    return new Request(url, { method: match[1]!, headers });
  } catch {
    return "bad request target";
  }
}

/** Writes `response` (body whole, `Connection: close`); the caller closes the connection. */
async function answer(conn: Deno.Conn, response: Response): Promise<void> {
  try {
    const body = new Uint8Array(await response.arrayBuffer());
    let head = `HTTP/1.1 ${response.status} ${
      response.statusText || REASONS[response.status] || "-"
    }\r\n`;
    for (const [name, value] of response.headers) {
      if (name !== "content-length" && name !== "connection") head += `${name}: ${value}\r\n`;
    }
    head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
    const out = new Uint8Array(encoder.encode(head).length + body.length);
    const headBytes = encoder.encode(head);
    out.set(headBytes);
    out.set(body, headBytes.length);
    await writeAll(conn, out);
  } catch {
    // the peer left
  }
}

function closeConn(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}
