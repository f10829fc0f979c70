import assert from "node:assert/strict";
import { WsClient } from "../../bus/ws_client.ts";
import { BusClient, type BusErrorEvent, type BusMessage } from "../../bus/client.ts";
import { serveTlsEcho, tlsTest } from "../fixtures/tls_certs.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Every event of a client, in order, with a way to wait for the close. */
function record(ws: WsClient): { log: string[]; messages: unknown[]; closed: Promise<CloseEvent> } {
  const log: string[] = [];
  const messages: unknown[] = [];
  const { promise: closed, resolve } = Promise.withResolvers<CloseEvent>();
  ws.onopen = () => log.push("open");
  ws.onmessage = (event) => {
    log.push("message");
    messages.push(event.data);
  };
  ws.onerror = (event) => log.push(`error: ${(event as ErrorEvent).message}`);
  ws.onclose = (event) => {
    log.push(`close ${event.code}`);
    resolve(event);
  };
  return { log, messages, closed };
}

function opened(ws: WsClient): Promise<void> {
  return new Promise((resolve) => ws.addEventListener("open", () => resolve(), { once: true }));
}

function nextMessage(ws: WsClient): Promise<unknown> {
  return new Promise((resolve) =>
    ws.addEventListener("message", (event) => resolve((event as MessageEvent).data), {
      once: true,
    })
  );
}

/** A frame as a client sends it, unmasked, with what the mask looked like. */
interface ClientFrame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
}

/** The server side of RFC 6455 by hand, on one accepted connection. */
class RawServer implements AsyncDisposable {
  #listener: Deno.TcpListener;
  #conn: Deno.TcpConn | undefined;
  #buf = new Uint8Array(0);

  constructor() {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.#listener.addr.port}/path?x=1`;
  }

  /** Accepts the connection and reads the request; answers with `respond` or a valid 101. */
  async accept(respond?: (key: string) => string): Promise<string> {
    this.#conn = await this.#listener.accept();
    let request = "";
    while (!request.includes("\r\n\r\n")) {
      await this.#fill();
      request = decoder.decode(this.#buf);
    }
    this.#buf = this.#buf.subarray(request.indexOf("\r\n\r\n") + 4);
    const key = /sec-websocket-key: *(\S+)/i.exec(request)?.[1];
    if (key === undefined) throw new Error(`no Sec-WebSocket-Key in the request: ${request}`);
    const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    await this.write(
      encoder.encode(
        respond?.(key) ??
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
      ),
    );
    return request;
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let offset = 0; offset < bytes.length;) {
      offset += await this.#conn!.write(bytes.subarray(offset));
    }
  }

  /** Sends one server frame (unmasked unless `mask` is given). */
  send(opcode: number, payload: Uint8Array | string, fin = true, mask?: Uint8Array): Promise<void> {
    const body = typeof payload === "string" ? encoder.encode(payload) : payload;
    const head = [(fin ? 0x80 : 0) | opcode];
    const maskBit = mask ? 0x80 : 0;
    if (body.length < 126) head.push(maskBit | body.length);
    else head.push(maskBit | 126, body.length >> 8, body.length & 0xff);
    const masked = mask ? body.map((b, i) => b ^ mask[i & 3]!) : body; // a mask has 4 bytes
    return this.write(new Uint8Array([...head, ...(mask ?? []), ...masked]));
  }

  /** Reads one client frame, or null at the end of the stream. */
  async frame(): Promise<ClientFrame | null> {
    const need = async (n: number): Promise<boolean> => {
      while (this.#buf.length < n) if (!(await this.#fill())) return false;
      return true;
    };
    if (!(await need(2))) return null;
    const head = this.#view();
    const fin = (head.getUint8(0) & 0x80) !== 0;
    const opcode = head.getUint8(0) & 0x0f;
    const masked = (head.getUint8(1) & 0x80) !== 0;
    let length = head.getUint8(1) & 0x7f;
    let offset = 2;
    if (length === 126) {
      await need(4);
      length = this.#view().getUint16(2);
      offset = 4;
    } else if (length === 127) {
      await need(10);
      length = Number(this.#view().getBigUint64(2));
      offset = 10;
    }
    const maskLength = masked ? 4 : 0;
    await need(offset + maskLength + length);
    const mask = this.#buf.slice(offset, offset + maskLength);
    const body = this.#buf.slice(offset + maskLength, offset + maskLength + length);
    const payload = masked ? body.map((b, i) => b ^ mask[i & 3]!) : body; // a mask has 4 bytes
    this.#buf = this.#buf.subarray(offset + maskLength + length);
    return { fin, opcode, masked, payload };
  }

  /** The bytes read and not consumed yet; its reads throw beyond them. */
  #view(): DataView {
    return new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  }

  /** Closes the connection (the client sees the end of the stream). */
  closeConn(): void {
    this.#conn?.close();
    this.#conn = undefined;
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(65_536);
    const read = await this.#conn!.read(chunk);
    if (read === null) return false;
    const next = new Uint8Array(this.#buf.length + read);
    next.set(this.#buf);
    next.set(chunk.subarray(0, read), this.#buf.length);
    this.#buf = next;
    return true;
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.closeConn();
    this.#listener.close();
    return Promise.resolve();
  }
}

function closePayload(code: number, reason: string): Uint8Array {
  return new Uint8Array([code >> 8, code & 0xff, ...encoder.encode(reason)]);
}

/** The status code of a close frame from the client, if it has one. */
function closeCode(frame: ClientFrame | null): number | undefined {
  const payload = frame?.payload;
  if (payload === undefined || payload.length < 2) return undefined;
  return new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint16(0);
}

Deno.test("WsClient talks to Deno.serve: text both ways with 7-, 16- and 64-bit lengths, then closes cleanly", async () => {
  const serverClosed = Promise.withResolvers<CloseEvent>();
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen(): void {} },
    (request) => {
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onmessage = (event) => socket.send(event.data);
      socket.onclose = serverClosed.resolve;
      return response;
    },
  );
  const ws = new WsClient(`ws://127.0.0.1:${server.addr.port}/`);
  const { log, closed } = record(ws);
  assert.equal(ws.readyState, WsClient.CONNECTING);
  assert.throws(() => ws.send("too early"), { name: "InvalidStateError" });
  await opened(ws);
  assert.equal(ws.readyState, WsClient.OPEN);
  for (const text of ["hé", "x".repeat(300), "y".repeat(70_000)]) {
    const echoed = nextMessage(ws);
    ws.send(text);
    assert.equal(await echoed, text);
  }
  ws.close(1000, "bye");
  assert.equal(ws.readyState, WsClient.CLOSING);
  const event = await closed;
  assert.deepEqual([event.code, event.reason, event.wasClean], [1000, "bye", true]);
  assert.equal((await serverClosed.promise).code, 1000);
  assert.equal(ws.readyState, WsClient.CLOSED);
  assert.deepEqual(log, ["open", "message", "message", "message", "close 1000"]);
});

Deno.test("WsClient sends an HTTP/1.1 upgrade with the URL's path and masks every frame", async () => {
  await using server = new RawServer();
  const ws = new WsClient(server.url);
  const { closed } = record(ws);
  const request = await server.accept();
  assert.match(request, /^GET \/path\?x=1 HTTP\/1\.1\r\n/);
  assert.match(request, /\r\nUpgrade: websocket\r\n/i);
  assert.match(request, /\r\nSec-WebSocket-Version: 13\r\n/i);
  await opened(ws);
  const big = new Uint8Array(70_000).map((_, i) => i & 0xff);
  ws.send("one");
  ws.send(big);
  const text = await server.frame();
  assert.deepEqual([text?.fin, text?.opcode, text?.masked], [true, 0x1, true]);
  assert.equal(decoder.decode(text!.payload), "one");
  const binary = await server.frame();
  assert.deepEqual([binary?.opcode, binary?.masked], [0x2, true]);
  assert.deepEqual(binary!.payload, big);
  ws.close();
  const close = await server.frame();
  assert.deepEqual([close?.opcode, close?.masked, close?.payload.length], [0x8, true, 0]);
  await server.send(0x8, new Uint8Array());
  assert.equal((await closed).code, 1005); // no code on either side
});

Deno.test("WsClient assembles fragmented messages, passes binary as ArrayBuffer and answers a ping between fragments", async () => {
  await using server = new RawServer();
  const ws = new WsClient(server.url);
  const { log, messages, closed } = record(ws);
  await server.accept();
  await server.send(0x1, "hel", false);
  await server.send(0x9, "are you there");
  await server.send(0x0, "lo, ", false);
  await server.send(0x0, "wörld", true);
  await server.send(0x2, new Uint8Array([1, 2, 3]));
  const pong = await server.frame();
  assert.deepEqual([pong?.opcode, pong?.masked], [0xa, true]);
  assert.equal(decoder.decode(pong!.payload), "are you there");
  await server.send(0x8, closePayload(4001, "gone"));
  const echo = await server.frame();
  assert.equal(echo?.opcode, 0x8);
  assert.deepEqual(echo!.payload, closePayload(4001, "")); // the code, echoed
  server.closeConn();
  const event = await closed;
  assert.deepEqual([event.code, event.reason, event.wasClean], [4001, "gone", true]);
  assert.equal(messages[0], "hello, wörld");
  assert.ok(messages[1] instanceof ArrayBuffer);
  assert.deepEqual(new Uint8Array(messages[1] as ArrayBuffer), new Uint8Array([1, 2, 3]));
  assert.deepEqual(log, ["open", "message", "message", "close 4001"]);
});

Deno.test("WsClient fails the connection with 1002 on a masked server frame", async () => {
  await using server = new RawServer();
  const ws = new WsClient(server.url);
  const { log, closed } = record(ws);
  await server.accept();
  await server.send(0x1, "masked", true, new Uint8Array([1, 2, 3, 4]));
  const close = await server.frame();
  assert.equal(close?.opcode, 0x8);
  assert.equal(closeCode(close), 1002);
  const event = await closed;
  assert.deepEqual([event.code, event.wasClean], [1006, false]);
  assert.deepEqual(log, ["open", "error: the server sent a masked frame", "close 1006"]);
});

Deno.test("WsClient fails the connection with 1009 on a message over maxMessageBytes", async () => {
  await using server = new RawServer();
  const ws = new WsClient(server.url, { maxMessageBytes: 10 });
  const { log, closed } = record(ws);
  await server.accept();
  await server.send(0x1, "0123456", false);
  await server.send(0x0, "789ab", true);
  const close = await server.frame();
  assert.equal(closeCode(close), 1009);
  assert.equal((await closed).code, 1006);
  assert.equal(log.filter((line) => line.startsWith("error")).length, 1);
});

Deno.test("WsClient reports an invalid upgrade answer as error, then close 1006", async () => {
  await using server = new RawServer();
  const ws = new WsClient(server.url);
  const { log, closed } = record(ws);
  await server.accept(() =>
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
    "Connection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n"
  );
  assert.equal((await closed).code, 1006);
  assert.deepEqual(log, [
    "error: the server's upgrade response is not a valid WebSocket handshake",
    "close 1006",
  ]);
});

Deno.test("WsClient reports a refused connection as error, then close 1006", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const ws = new WsClient(`ws://127.0.0.1:${port}/`);
  const { log, closed } = record(ws);
  assert.equal((await closed).code, 1006);
  assert.equal(log.length, 2);
  assert.match(log[0] ?? "", /^error: cannot connect to ws:\/\/127\.0\.0\.1:\d+\//);
});

Deno.test("WsClient.close while connecting abandons the connection with close 1006", async () => {
  await using server = new RawServer();
  const ws = new WsClient(server.url);
  const { closed } = record(ws);
  ws.close(1000);
  assert.equal(ws.readyState, WsClient.CLOSING);
  assert.equal((await closed).code, 1006);
  assert.equal(ws.readyState, WsClient.CLOSED);
});

Deno.test("WsClient.close drops the connection after closeTimeoutMs when the server never answers", async () => {
  await using server = new RawServer();
  const ws = new WsClient(server.url, { closeTimeoutMs: 50 });
  const { closed } = record(ws);
  await server.accept();
  await opened(ws);
  ws.close(4000, "bye");
  assert.equal((await server.frame())?.opcode, 0x8);
  const event = await closed; // the server never sends its close frame
  assert.deepEqual([event.code, event.wasClean], [1006, false]);
});

Deno.test("WsClient gives up after openTimeoutMs on a server that never answers the upgrade", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const ws = new WsClient(`ws://127.0.0.1:${listener.addr.port}/`, { openTimeoutMs: 50 });
  const { log, closed } = record(ws);
  const conn = await accepted; // accepted, and never answered
  assert.equal((await closed).code, 1006);
  assert.equal(log.length, 2);
  assert.match(log[0] ?? "", /no WebSocket handshake within 50 ms/);
  conn.close();
  listener.close();
});

Deno.test("WsClient rejects a URL that is not ws: or wss: like WebSocket", () => {
  assert.throws(() => new WsClient("http://127.0.0.1/"), { name: "SyntaxError" });
  assert.throws(() => new WsClient("not a url"), { name: "SyntaxError" });
});

Deno.test("WsClient.close rejects a code a client may not send and a long reason", async () => {
  await using server = new RawServer();
  const ws = new WsClient(server.url);
  const { closed } = record(ws);
  await server.accept();
  await opened(ws);
  assert.throws(() => ws.close(1001), { name: "InvalidAccessError" });
  assert.throws(() => ws.close(1000, "x".repeat(124)), { name: "SyntaxError" });
  ws.close(1000);
  await server.frame();
  await server.send(0x8, closePayload(1000, ""));
  assert.equal((await closed).code, 1000);
});

Deno.test("WsClient.close right after the server accepted leaves nothing pending", async () => {
  // A TCP listener that accepts but never answers the handshake; the client's connect may
  // not have resolved yet when close() comes.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const ws = new WsClient(`ws://127.0.0.1:${listener.addr.port}/`);
  const { closed } = record(ws);
  const conn = await accepted;
  ws.close();
  assert.equal((await closed).code, 1006);
  conn.close();
  listener.close();
});

Deno.test("BusClient works over WsClient (noDelay, the default) and over the built-in WebSocket", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen(): void {} },
    (request) => {
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        socket.send(JSON.stringify(message.cmd === "register" ? { cmd: "registered" } : message));
      };
      return response;
    },
  );
  for (const noDelay of [true, false]) {
    await using client = new BusClient(`ws://127.0.0.1:${server.addr.port}`, {
      register: () => ({ cmd: "register", type: "producer", protocol: 2 }),
      noDelay,
    });
    const messages: BusMessage[] = [];
    const registered = new Promise((resolve) => client.addEventListener("registered", resolve));
    const echoed = Promise.withResolvers<void>();
    client.addEventListener("message", (event) => {
      messages.push(event.message);
      if (messages.length === 3) echoed.resolve();
    });
    client.start();
    await registered;
    assert.equal(client.send({ cmd: "ping", n: 1 }), true);
    assert.equal(client.send({ cmd: "ping", n: 2 }), true);
    await echoed.promise;
    assert.deepEqual(messages, [{ cmd: "registered" }, { cmd: "ping", n: 1 }, {
      cmd: "ping",
      n: 2,
    }]);
  }
});

/** Accepts one connection, reads its upgrade request, answers `response`; returns the request. */
async function oneUpgradeRequest(
  options: ConstructorParameters<typeof WsClient>[1],
  answer: (request: string) => string,
): Promise<{ request: string; close: CloseEvent; errors: string[] }> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const ws = new WsClient(`ws://127.0.0.1:${listener.addr.port}/`, options);
  const { log, closed } = record(ws);
  const conn = await listener.accept();
  let text = "";
  const buf = new Uint8Array(4096);
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += decoder.decode(buf.subarray(0, n));
  }
  await conn.write(encoder.encode(answer(text)));
  conn.close();
  const close = await closed;
  return { request: text, close, errors: log.filter((line) => line.startsWith("error")) };
}

const REFUSE_401 = (): string => {
  const body = JSON.stringify({ error: "missing token" });
  return `HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n` +
    `content-length: ${body.length}\r\n\r\n${body}`;
};

Deno.test("WsClient sends its token as Authorization: Bearer, and no such header without one", async () => {
  const secret = "sched_abcDEF123-_xyz";
  const withToken = await oneUpgradeRequest({ token: secret }, REFUSE_401);
  assert.match(withToken.request, /\r\nAuthorization: Bearer sched_abcDEF123-_xyz\r\n/);
  const without = await oneUpgradeRequest({}, REFUSE_401);
  assert.doesNotMatch(without.request, /authorization/i);
  // The refusal is said with the server's reason; the secret is in no message.
  assert.deepEqual(withToken.errors, [
    "error: the server refused the upgrade: HTTP/1.1 401 Unauthorized: missing token",
  ]);
  assert.equal(withToken.close.code, 1006);
});

Deno.test("WsClient sends extra headers and offered subprotocols", async () => {
  const { request } = await oneUpgradeRequest(
    { headers: { "X-Trace": "t1" }, protocols: ["sched.v2", "bearer.c2VjcmV0"] },
    REFUSE_401,
  );
  assert.match(request, /\r\nX-Trace: t1\r\n/);
  assert.match(request, /\r\nSec-WebSocket-Protocol: sched.v2, bearer.c2VjcmV0\r\n/);
});

Deno.test("WsClient refuses a token or header that cannot go in a header, without echoing it", () => {
  for (const token of ["has space", "line\r\nX-Evil: 1", ""]) {
    assert.throws(
      () => new WsClient("ws://127.0.0.1:9/", { token }),
      (error: Error) => error instanceof TypeError && !error.message.includes(token || "\0"),
    );
  }
  assert.throws(() => new WsClient("ws://127.0.0.1:9/", { headers: { Host: "x" } }), TypeError);
  assert.throws(
    () => new WsClient("ws://127.0.0.1:9/", { headers: { "X-A": "a\r\nb" } }),
    TypeError,
  );
  assert.throws(
    () => new WsClient("ws://127.0.0.1:9/", { protocols: ["a b"] }),
    (error: Error) => error.name === "SyntaxError",
  );
});

tlsTest(
  "WsClient connects over wss:// with the CA given, and names the certificate without it",
  async (certs, t) => {
    await using server = serveTlsEcho(certs);
    await t.step("trusted: a message goes there and back, with the token sent", async () => {
      const ws = new WsClient(server.url, { caCerts: [certs.caCert], token: "sched_tls" });
      const { closed } = record(ws);
      await opened(ws);
      const reply = nextMessage(ws);
      ws.send("over tls");
      assert.equal(await reply, "over tls");
      ws.close(1000, "done");
      assert.equal((await closed).code, 1000);
      assert.equal(server.authorizations.at(-1), "Bearer sched_tls");
    });
    await t.step("closed while connecting: released, with no error thrown", async () => {
      const ws = new WsClient(server.url, { caCerts: [certs.caCert] });
      const { closed } = record(ws);
      ws.close();
      assert.equal((await closed).code, 1006);
    });
    const cases: [string, string[] | undefined][] = [
      ["no CA", undefined],
      ["another CA", [certs.otherCaCert]],
    ];
    for (const [name, caCerts] of cases) {
      await t.step(`untrusted (${name}): a TLS error naming the certificate`, async () => {
        const ws = new WsClient(server.url, caCerts ? { caCerts, token: "sched_x" } : {});
        const { log, closed } = record(ws);
        assert.equal((await closed).code, 1006);
        assert.equal(log.length, 2, log.join("\n"));
        assert.match(log[0]!, /^error: TLS handshake with 127\.0\.0\.1:\d+ failed: .*certificate/i);
        assert.doesNotMatch(log[0]!, /sched_x/);
        assert.equal(log[1], "close 1006");
      });
    }
  },
);

tlsTest("BusClient passes token and caCerts on, and marks a refusal", async (certs) => {
  await using server = serveTlsEcho(certs);
  {
    await using client = new BusClient(server.url, {
      register: () => ({ cmd: "register", type: "producer", protocol: 2 }),
      token: "sched_bus",
      caCerts: [certs.caCert],
    });
    const registered = new Promise((resolve) => client.addEventListener("registered", resolve));
    client.start();
    await registered;
    assert.equal(server.authorizations.at(-1), "Bearer sched_bus");
  }
  await using untrusted = new BusClient(server.url, {
    register: () => ({ cmd: "register", type: "producer", protocol: 2 }),
    token: "sched_bus",
  });
  const error = new Promise<BusErrorEvent>((resolve) =>
    untrusted.addEventListener("error", resolve, { once: true })
  );
  untrusted.start();
  const event = await error;
  assert.equal(event.refused, true);
  assert.match(event.error.message, /^cannot connect to wss:.*TLS handshake.*certificate/i);
  assert.doesNotMatch(event.error.message, /sched_bus/);
});

Deno.test("BusClient: a 4xx answer to the upgrade is a refusal, a 5xx (it may pass) is not", async () => {
  for (const [status, refused] of [[403, true], [503, false]] as const) {
    await using server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen(): void {} },
      () => Response.json({ error: `status ${status}` }, { status }),
    );
    await using client = new BusClient(`ws://127.0.0.1:${server.addr.port}`, {
      register: () => ({ cmd: "register", type: "monitor", protocol: 2 }),
    });
    const error = new Promise<BusErrorEvent>((resolve) =>
      client.addEventListener("error", resolve, { once: true })
    );
    client.start();
    const event = await error;
    assert.equal(event.refused, refused);
    assert.match(
      event.error.message,
      new RegExp(`refused the upgrade: HTTP/1.1 ${status} .*: status ${status}$`),
    );
  }
});
