import assert from "node:assert/strict";
import { BusServer } from "../../bus/server.ts";
import { HttpFront } from "../../bus/http_front.ts";
import { withTimeout } from "../fixtures/raw_ws.ts";

const encoder = new TextEncoder();

function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.length;) offset += await conn.write(data.subarray(offset));
}

/** Every byte until the server ends the connection (a reset ends it too). */
async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: number[] = [];
  const buffer = new Uint8Array(1 << 16);
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) return new Uint8Array(parts);
    parts.push(...buffer.subarray(0, n));
  }
}

/** Sends an upgrade request on `conn`; returns the answer's head and the bytes after it. */
async function upgrade(conn: Deno.Conn, port: number): Promise<string> {
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  await writeAll(
    conn,
    encoder.encode(
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ),
  );
  // The 101 head comes alone: the bus sends nothing before the client does.
  const buffer = new Uint8Array(4096);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buffer);
    if (n === null) break;
    head += new TextDecoder().decode(buffer.subarray(0, n));
  }
  return head;
}

/** One masked client frame. */
function maskedFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const frame = new Uint8Array(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length; // < 126 here
  frame.set(mask, 2);
  payload.forEach((byte, i) => frame[6 + i] = byte ^ mask[i & 3]!);
  return frame;
}

function start(options: ConstructorParameters<typeof BusServer>[0] = {}): {
  bus: BusServer;
  port: number;
} {
  const bus = new BusServer({ port: 0, pingTimeoutMs: 0, ...options });
  return { bus, port: bus.listen().port };
}

Deno.test("BusServer closes a connection that sends nothing after headerTimeoutMs", async () => {
  const { bus, port } = start({ headerTimeoutMs: 150 });
  await using _bus = bus;
  const conn = await connect(port);
  try {
    const began = Date.now();
    const bytes = await withTimeout(readToEnd(conn), 5000, "the end of the connection");
    assert.equal(bytes.length, 0);
    assert.ok(Date.now() - began >= 100, "closed before the timeout");
  } finally {
    conn.close();
  }
});

Deno.test("BusServer closes a connection that sends half a request head after headerTimeoutMs", async () => {
  const { bus, port } = start({ headerTimeoutMs: 150 });
  await using _bus = bus;
  const conn = await connect(port);
  try {
    await writeAll(conn, encoder.encode("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    const bytes = await withTimeout(readToEnd(conn), 5000, "the end of the connection");
    assert.equal(bytes.length, 0);
  } finally {
    conn.close();
  }
  const health = await fetch(`http://127.0.0.1:${port}/health`); // the bus serves on
  assert.equal((await health.json()).status, "ok");
});

Deno.test("BusServer answers a request head over 16 KiB with 431", async () => {
  const { bus, port } = start();
  await using _bus = bus;
  const conn = await connect(port);
  try {
    const head = `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${"x".repeat(17_000)}\r\n\r\n`;
    await writeAll(conn, encoder.encode(head)).catch(() => {}); // the bus may stop reading
    const answer = new TextDecoder().decode(await withTimeout(readToEnd(conn), 5000, "answer"));
    assert.match(answer, /^HTTP\/1\.1 431 /);
  } finally {
    conn.close();
  }
});

Deno.test("BusServer closes a text frame of invalid UTF-8 with 1007", async () => {
  const { bus, port } = start();
  await using _bus = bus;
  const conn = await connect(port);
  try {
    assert.match(await upgrade(conn, port), /^HTTP\/1\.1 101 /);
    await writeAll(conn, maskedFrame(0x1, new Uint8Array([0x7b, 0xff, 0x7d])));
    const bytes = await withTimeout(readToEnd(conn), 5000, "the end of the connection");
    assert.equal(bytes[0], 0x88, "a close frame");
    assert.equal((bytes[2]! << 8) | bytes[3]!, 1007);
  } finally {
    conn.close();
  }
});

Deno.test("BusServer ends the TCP connection of a peer that never answers its close", async () => {
  const { bus, port } = start({ registerTimeoutMs: 100 });
  await using _bus = bus;
  const conn = await connect(port);
  try {
    assert.match(await upgrade(conn, port), /^HTTP\/1\.1 101 /);
    const began = Date.now();
    // Reads (the 1008 close arrives) but never answers it.
    const bytes = await withTimeout(readToEnd(conn), 8000, "the end of the connection");
    assert.equal(bytes[0], 0x88, "a close frame");
    assert.equal((bytes[2]! << 8) | bytes[3]!, 1008);
    assert.ok(Date.now() - began < 6000, `took ${Date.now() - began} ms`);
  } finally {
    conn.close();
  }
});

Deno.test("HttpFront releases 2,000 half-open connections after the header timeout", async () => {
  const front = new HttpFront(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: 300 },
    () => new Response("never reached"),
  );
  const { port } = front.listen();
  const conns: Deno.TcpConn[] = [];
  try {
    for (let batch = 0; batch < 20; batch++) {
      const opened = await Promise.all(Array.from({ length: 100 }, () => connect(port)));
      conns.push(...opened);
      await Promise.all(opened.map((c) => writeAll(c, encoder.encode("GET / HTTP/1.1\r\n"))));
    }
    const ends = await withTimeout(
      Promise.all(conns.map((c) => readToEnd(c))),
      20_000,
      "every connection ended",
    );
    assert.equal(ends.length, 2000);
    assert.ok(ends.every((bytes) => bytes.length === 0));
    assert.equal(front.connections, 0);
  } finally {
    for (const conn of conns) conn.close();
    await front.close();
  }
});

Deno.test("HttpFront serves TLS-less GETs with the remote address, one per connection", async () => {
  let remote = "";
  const front = new HttpFront({ hostname: "127.0.0.1", port: 0 }, (request, info) => {
    remote = info.remoteAddr.hostname;
    return Response.json({ path: new URL(request.url).pathname });
  });
  const { port } = front.listen();
  try {
    const response = await fetch(`http://127.0.0.1:${port}/x?y=1`);
    assert.deepEqual(await response.json(), { path: "/x" });
    assert.equal(remote, "127.0.0.1");
  } finally {
    await front.close();
  }
});

Deno.test("BusServer's socket joins a fragmented message and answers a ping with a pong", async () => {
  const { bus, port } = start();
  await using _bus = bus;
  const conn = await connect(port);
  try {
    assert.match(await upgrade(conn, port), /^HTTP\/1\.1 101 /);
    await writeAll(conn, maskedFrame(0x9, encoder.encode("hi")));
    const text = encoder.encode(JSON.stringify({ cmd: "register", type: "monitor", protocol: 2 }));
    const first = maskedFrame(0x1, text.subarray(0, 10));
    first[0] = 0x01; // FIN off
    await writeAll(conn, first);
    await writeAll(conn, maskedFrame(0x0, text.subarray(10)));
    let got = new Uint8Array();
    const buffer = new Uint8Array(4096);
    while (!new TextDecoder().decode(got).includes("registered")) {
      const n = await withTimeout(conn.read(buffer), 5000, "the answer");
      assert.notEqual(n, null, "the bus ended the connection");
      got = new Uint8Array([...got, ...buffer.subarray(0, n!)]);
    }
    assert.deepEqual([...got.subarray(0, 4)], [0x8a, 2, 0x68, 0x69]); // the pong, unmasked
  } finally {
    conn.close();
  }
});
