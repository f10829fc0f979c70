/**
 * The RFC 6455 frame codec shared by both ends of the bus's WebSockets: {@linkcode WsClient}
 * (masked frames out, unmasked in) and the server's socket (unmasked out, masked in).
 *
 * Internal to `bus/`: not exported from `bus/mod.ts`.
 *
 * @module
 */

/** The GUID of the opening handshake's `Sec-WebSocket-Accept` (RFC 6455 §1.3). */
export const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/**
 * A violation of RFC 6455 by the peer: the connection fails with `code` sent to it.
 *
 * @example
 * ```ts
 * import { WsProtocolError } from "./ws_frames.ts";
 * console.log(new WsProtocolError(1002, "a masked frame", "server").message);
 * ```
 */
export class WsProtocolError extends Error {
  /**
   * @param code The close code to send (1002, 1007 or 1009).
   * @param what What the peer sent.
   * @param peer Who sent it ("server" or "client").
   */
  constructor(readonly code: number, what: string, peer: string) {
    super(`the ${peer} sent ${what}`);
    this.name = "WsProtocolError";
  }
}

/** One frame as read. */
export interface Frame {
  /** The FIN bit. */
  fin: boolean;
  /** The opcode. */
  opcode: number;
  /** The payload, unmasked. */
  payload: Uint8Array;
}

/** Options of {@linkcode FrameReader}. */
export interface FrameReaderOptions {
  /** The largest frame payload accepted; larger ones fail with 1009. */
  maxFrameBytes: number;
  /** Whether frames come masked (from a client) or not (from a server). */
  masked: boolean;
}

/**
 * Buffered reads from a connection: an HTTP head, then frames.
 *
 * @example
 * ```ts
 * import { FrameReader } from "./ws_frames.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const server = await listener.accept();
 * await client.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
 * console.log(await new FrameReader(server, { maxFrameBytes: 1024, masked: true }).head(1024));
 * client.close();
 * server.close();
 * listener.close();
 * ```
 */
export class FrameReader {
  #conn: Deno.Conn;
  #max: number;
  #masked: boolean;
  #peer: string;
  #buf = new Uint8Array(65_536);
  #start = 0;
  #end = 0;

  /**
   * @param conn The connection.
   * @param options See {@linkcode FrameReaderOptions}.
   */
  constructor(conn: Deno.Conn, options: FrameReaderOptions) {
    this.#conn = conn;
    this.#max = options.maxFrameBytes;
    this.#masked = options.masked;
    this.#peer = options.masked ? "client" : "server";
  }

  /**
   * An HTTP head up to its blank line (the bytes after it stay buffered).
   *
   * @param maxBytes The most bytes the head may take.
   * @returns The head without its blank line; null if the stream ended first.
   * @throws {RangeError} If the head is longer than `maxBytes`.
   */
  async head(maxBytes: number): Promise<string | null> {
    let from = 0;
    for (;;) {
      const view = this.#buf.subarray(this.#start, this.#end);
      for (let i = Math.max(3, from); i < view.length; i++) {
        if (view[i] === 10 && view[i - 1] === 13 && view[i - 2] === 10 && view[i - 3] === 13) {
          if (i + 1 > maxBytes) throw new RangeError(`a head over ${maxBytes} bytes`);
          this.#start += i + 1;
          return new TextDecoder().decode(view.subarray(0, i - 3));
        }
      }
      from = Math.max(0, view.length - 3);
      if (view.length >= maxBytes) throw new RangeError(`a head over ${maxBytes} bytes`);
      if (!(await this.#fill())) return null;
    }
  }

  /**
   * The next frame.
   *
   * @returns The frame, or null at the end of the stream.
   * @throws {WsProtocolError} If the frame breaks RFC 6455 or is over the limit.
   */
  async frame(): Promise<Frame | null> {
    // `#exactly(n)` gives n bytes: the indexes below are in range.
    const head = await this.#exactly(2);
    if (head === null) return null;
    const fin = (head[0]! & 0x80) !== 0;
    const opcode = head[0]! & 0x0f;
    const peer = this.#peer;
    if ((head[0]! & 0x70) !== 0) throw new WsProtocolError(1002, "reserved bits set", peer);
    const masked = (head[1]! & 0x80) !== 0;
    if (masked !== this.#masked) {
      throw new WsProtocolError(1002, masked ? "a masked frame" : "an unmasked frame", peer);
    }
    if (![0x0, 0x1, 0x2, 0x8, 0x9, 0xa].includes(opcode)) {
      throw new WsProtocolError(1002, `an unknown opcode ${opcode}`, peer);
    }
    let length = head[1]! & 0x7f;
    if (opcode >= 0x8 && (!fin || length > 125)) {
      throw new WsProtocolError(1002, "a fragmented or long control frame", peer);
    }
    if (length === 126) {
      const ext = await this.#exactly(2);
      if (ext === null) return null;
      length = (ext[0]! << 8) | ext[1]!;
    } else if (length === 127) {
      const ext = await this.#exactly(8);
      if (ext === null) return null;
      const big = new DataView(ext.buffer, ext.byteOffset, 8).getBigUint64(0);
      if (big > BigInt(this.#max)) throw new WsProtocolError(1009, `a frame of ${big} bytes`, peer);
      length = Number(big);
    }
    if (length > this.#max) throw new WsProtocolError(1009, `a frame of ${length} bytes`, peer);
    const mask = masked ? await this.#exactly(4) : undefined;
    if (mask === null) return null;
    const payload = length === 0 ? new Uint8Array() : await this.#exactly(length);
    if (payload === null) return null;
    // i & 3 < 4 = mask.length: in range.
    if (mask) { for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!; }
    return { fin, opcode, payload };
  }

  /**
   * Exactly `n` bytes.
   *
   * @param n How many.
   * @returns A copy, or null if the stream ends first.
   */
  bytes(n: number): Promise<Uint8Array | null> {
    return this.#exactly(n);
  }

  async #exactly(n: number): Promise<Uint8Array | null> {
    if (this.#end - this.#start >= n) {
      const out = this.#buf.slice(this.#start, this.#start + n);
      this.#start += n;
      return out;
    }
    if (n > this.#buf.length / 2) { // big: read straight into the result
      const out = new Uint8Array(n);
      let filled = this.#end - this.#start;
      out.set(this.#buf.subarray(this.#start, this.#end));
      this.#start = this.#end = 0;
      while (filled < n) {
        const read = await this.#conn.read(out.subarray(filled));
        if (read === null) return null;
        filled += read;
      }
      return out;
    }
    while (this.#end - this.#start < n) {
      if (!(await this.#fill())) return null;
    }
    return this.#exactly(n);
  }

  /** Reads more into the buffer (moving what is left to its start first). */
  async #fill(): Promise<boolean> {
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const read = await this.#conn.read(this.#buf.subarray(this.#end));
    if (read === null) return false;
    this.#end += read;
    return true;
  }
}

/**
 * A close frame: the status code and reason (none when `code` is undefined).
 *
 * @param code The close code, or undefined for an empty close.
 * @param reason The reason's UTF-8 bytes (at most 123).
 * @param mask Whether to mask (a client's frames must be masked, a server's must not).
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeClose } from "./ws_frames.ts";
 * console.log(encodeClose(1000, new Uint8Array(), false)); // 88 02 03 e8
 * ```
 */
export function encodeClose(
  code: number | undefined,
  reason: Uint8Array,
  mask: boolean,
): Uint8Array {
  const payload = new Uint8Array(code === undefined ? 0 : 2 + reason.length);
  if (code !== undefined) {
    payload[0] = code >> 8;
    payload[1] = code & 0xff;
    payload.set(reason, 2);
  }
  return encodeFrame(0x8, payload, mask);
}

/**
 * A frame with FIN set: masked with a fresh random key (client) or not (server).
 *
 * @param opcode The opcode.
 * @param payload The payload.
 * @param mask Whether to mask (a client's frames must be masked, a server's must not).
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeFrame } from "./ws_frames.ts";
 * console.log(encodeFrame(0x1, new TextEncoder().encode("hi"), false)); // 81 02 68 69
 * ```
 */
export function encodeFrame(opcode: number, payload: Uint8Array, mask: boolean): Uint8Array {
  const length = payload.length;
  const extra = length < 126 ? 0 : length < 65_536 ? 2 : 8;
  const offset = 2 + extra + (mask ? 4 : 0);
  const frame = new Uint8Array(offset + length);
  const bit = mask ? 0x80 : 0;
  frame[0] = 0x80 | opcode;
  if (extra === 0) frame[1] = bit | length;
  else if (extra === 2) {
    frame[1] = bit | 126;
    frame[2] = length >> 8;
    frame[3] = length & 0xff;
  } else {
    frame[1] = bit | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(length));
  }
  if (!mask) {
    frame.set(payload, offset);
    return frame;
  }
  const key = frame.subarray(offset - 4, offset);
  crypto.getRandomValues(key);
  // i < payload.length and i & 3 < key.length (4): both reads are in range.
  for (let i = 0; i < length; i++) frame[offset + i] = payload[i]! ^ key[i & 3]!;
  return frame;
}

/**
 * Writes all of `data`.
 *
 * @param conn The connection.
 * @param data The bytes.
 * @returns Resolves once written.
 * @example
 * ```ts
 * import { writeAll } from "./ws_frames.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const server = await listener.accept();
 * await writeAll(client, new Uint8Array([1, 2, 3]));
 * client.close();
 * server.close();
 * listener.close();
 * ```
 */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.length;) offset += await conn.write(data.subarray(offset));
}

/**
 * The parts as one array: the only part itself, or the parts copied together.
 *
 * @param parts The parts.
 * @param size Their total length.
 * @returns One array.
 * @example
 * ```ts
 * import { join } from "./ws_frames.ts";
 * console.log(join([new Uint8Array([1]), new Uint8Array([2])], 2)); // [1, 2]
 * ```
 */
export function join(parts: Uint8Array[], size: number): Uint8Array {
  const first = parts[0];
  if (parts.length === 1 && first !== undefined) return first;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * The bytes as an `ArrayBuffer` of their own.
 *
 * @param bytes The bytes.
 * @returns The buffer (the same one when the view covers it whole).
 * @example
 * ```ts
 * import { toArrayBuffer } from "./ws_frames.ts";
 * console.log(toArrayBuffer(new Uint8Array([1, 2])).byteLength); // 2
 * ```
 */
export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes.buffer as ArrayBuffer
    : bytes.slice().buffer as ArrayBuffer;
}

/**
 * Decodes a text message.
 *
 * @param decoder A fatal UTF-8 decoder.
 * @param bytes The bytes.
 * @param peer Who sent them ("server" or "client").
 * @returns The text.
 * @throws {WsProtocolError} 1007 if the bytes are not valid UTF-8.
 * @example
 * ```ts
 * import { decodeText } from "./ws_frames.ts";
 * const decoder = new TextDecoder("utf-8", { fatal: true });
 * console.log(decodeText(decoder, new Uint8Array([0x68, 0x69]), "client")); // "hi"
 * ```
 */
export function decodeText(decoder: TextDecoder, bytes: Uint8Array, peer: string): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new WsProtocolError(1007, "text that is not valid UTF-8", peer);
  }
}

/** What one frame amounts to, for {@linkcode MessageAssembler.take}. */
export type FrameStep =
  | { kind: "message"; data: string | ArrayBuffer }
  | { kind: "close"; code: number; reason: string }
  | { kind: "ping"; payload: Uint8Array }
  | { kind: "none" };

const NOTHING_YET: FrameStep = Object.freeze({ kind: "none" });

/**
 * Turns the frames one end reads into what they mean: whole messages (fragments joined, text
 * checked as UTF-8), the peer's close (code and reason), pings to answer; RFC 6455's rules on
 * the way (1002 for frames out of place, 1007 for invalid UTF-8, 1009 for a message too big).
 *
 * @example
 * ```ts
 * import { MessageAssembler } from "./ws_frames.ts";
 * const assembler = new MessageAssembler(1024, "client");
 * const hi = new TextEncoder().encode("hi");
 * console.log(assembler.take({ fin: false, opcode: 0x1, payload: hi }).kind); // "none"
 * console.log(assembler.take({ fin: true, opcode: 0x0, payload: hi })); // { kind: "message", data: "hihi" }
 * ```
 */
export class MessageAssembler {
  readonly #text = new TextDecoder("utf-8", { fatal: true });
  readonly #maxMessageBytes: number;
  readonly #peer: string;
  #message: { opcode: number; parts: Uint8Array[]; size: number } | undefined;

  /**
   * @param maxMessageBytes The largest message (all its fragments) accepted.
   * @param peer Who sends the frames, for errors ("server" or "client").
   */
  constructor(maxMessageBytes: number, peer: string) {
    this.#maxMessageBytes = maxMessageBytes;
    this.#peer = peer;
  }

  /**
   * Takes the next frame read.
   *
   * @param frame The frame.
   * @returns What it amounts to: a whole message, the peer's close, a ping, or nothing yet.
   * @throws {WsProtocolError} When the frame breaks RFC 6455.
   */
  take(frame: Frame): FrameStep {
    const { fin, opcode, payload } = frame;
    const peer = this.#peer;
    if (opcode === 0x8) {
      if (payload.length === 1) throw new WsProtocolError(1002, "a close frame of 1 byte", peer);
      // Bytes 0 and 1 exist when the length says so.
      const code = payload.length >= 2 ? (payload[0]! << 8) | payload[1]! : 1005;
      const reason = payload.length > 2 ? decodeText(this.#text, payload.subarray(2), peer) : "";
      return { kind: "close", code, reason };
    }
    if (opcode === 0x9) return { kind: "ping", payload };
    if (opcode === 0xa) return NOTHING_YET;
    let message = this.#message;
    if (opcode === 0x0 && !message) {
      throw new WsProtocolError(1002, "a continuation out of place", peer);
    }
    if (opcode !== 0x0 && message) {
      throw new WsProtocolError(1002, "a new message inside a fragmented one", peer);
    }
    message ??= this.#message = { opcode, parts: [], size: 0 };
    message.parts.push(payload);
    message.size += payload.length;
    if (message.size > this.#maxMessageBytes) {
      throw new WsProtocolError(1009, `a message over ${this.#maxMessageBytes} bytes`, peer);
    }
    if (!fin) return NOTHING_YET;
    this.#message = undefined;
    const bytes = join(message.parts, message.size);
    const data = message.opcode === 0x1
      ? decodeText(this.#text, bytes, peer)
      : toArrayBuffer(bytes);
    return { kind: "message", data };
  }
}

/**
 * The outgoing side of a WebSocket connection: frames queued in order and written by one
 * writer, those queued in one synchronous run in one write; `buffered` counts the bytes not yet
 * written (a socket's `bufferedAmount`). A failed write means the connection is gone: what is
 * queued is dropped, and the read side notices and reports it.
 *
 * @example
 * ```ts
 * import { FrameWriter } from "./ws_frames.ts";
 * const writer = new FrameWriter(() => undefined); // no connection yet: frames wait
 * writer.enqueue(new Uint8Array([0x81, 0]));
 * console.log(writer.buffered); // 2
 * ```
 */
export class FrameWriter {
  readonly #conn: () => Deno.Conn | undefined;
  #pending: Uint8Array[] = [];
  #buffered = 0;
  #flushing: Promise<void> | undefined;

  /**
   * @param conn The connection to write to, once there is one.
   */
  constructor(conn: () => Deno.Conn | undefined) {
    this.#conn = conn;
  }

  /** Bytes queued and not yet written. */
  get buffered(): number {
    return this.#buffered;
  }

  /** The write in progress, if any (awaited before closing the connection). */
  get flushing(): Promise<void> | undefined {
    return this.#flushing;
  }

  /**
   * Queues a frame; writing starts when there is a connection.
   *
   * @param frame The encoded frame.
   */
  enqueue(frame: Uint8Array): void {
    this.#pending.push(frame);
    this.#buffered += frame.length;
    if (this.#conn() !== undefined) this.#flushing ??= this.#flush();
  }

  async #flush(): Promise<void> {
    await null; // let the rest of this synchronous run queue its frames too
    try {
      while (this.#pending.length > 0) {
        const frames = this.#pending;
        this.#pending = [];
        const size = frames.reduce((sum, frame) => sum + frame.length, 0);
        await writeAll(this.#conn()!, join(frames, size));
        this.#buffered -= size;
      }
    } catch {
      // The connection is gone: the read side notices and reports it.
      this.#pending = [];
      this.#buffered = 0;
    } finally {
      this.#flushing = undefined;
    }
  }
}
