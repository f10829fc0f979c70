import assert from "node:assert/strict";
import { backoffDelay, resolveBackoff } from "../../bus/backoff.ts";
import { BusClient, type BusClientEventMap } from "../../bus/client.ts";
import { FakeClock } from "../fake_clock.ts";
import { DeadPort } from "../fixtures/dead_port.ts";
import { FakeBus } from "../fixtures/fake_bus.ts";
import { TcpRelay } from "../fixtures/tcp_relay.ts";

const REGISTER = { cmd: "register", type: "producer", protocol: 2, name: "t" };

/** Resolves with the next event of `type`. */
function next<K extends keyof BusClientEventMap>(
  client: BusClient,
  type: K,
): Promise<BusClientEventMap[K]> {
  return new Promise((resolve) =>
    client.addEventListener(type, (event) => resolve(event), { once: true })
  );
}

Deno.test("backoffDelay doubles the cap from initialMs up to maxMs, with full jitter", () => {
  const none = [1, 2, 3, 4, 6, 7, 50].map((n) => backoffDelay(n, { jitter: "none" }));
  assert.deepEqual(none, [100, 200, 400, 800, 3200, 5000, 5000]);
  assert.equal(backoffDelay(4, {}, () => 0.25), 200);
  assert.equal(backoffDelay(40, {}, () => 0.999), 4995);
  assert.equal(backoffDelay(1, {}, () => 0), 0);
  assert.throws(() => backoffDelay(0), RangeError);
  assert.throws(() => resolveBackoff({ initialMs: 10, maxMs: 5 }), RangeError);
  assert.throws(() => resolveBackoff({ factor: 0.5 }), RangeError);
});

Deno.test("BusClient rejects a non-WebSocket URL", () => {
  assert.throws(() => new BusClient("http://127.0.0.1:1", { register: () => REGISTER }), TypeError);
  assert.throws(() => new BusClient("nonsense", { register: () => REGISTER }), TypeError);
});

Deno.test("BusClient connects, sends the register message first, and dispatches messages", async () => {
  const bus = new FakeBus();
  try {
    await using client = new BusClient(bus.url, { register: () => REGISTER });
    assert.equal(client.send({ cmd: "early" }), false);
    const opened = next(client, "open");
    const registered = next(client, "registered");
    client.start();
    assert.equal((await opened).reconnect, false);
    assert.equal(client.connected, true);
    assert.deepEqual((await registered).message, { cmd: "registered" });
    const echoed = next(client, "message");
    assert.equal(client.send({ cmd: "job_request", id: "t-1" }), true);
    for (const socket of bus.sockets) socket.send(JSON.stringify({ cmd: "accepted", id: "t-1" }));
    assert.deepEqual((await echoed).message, { cmd: "accepted", id: "t-1" });
    assert.deepEqual(bus.received, [REGISTER, { cmd: "job_request", id: "t-1" }]);
  } finally {
    await bus.close();
  }
});

Deno.test("BusClient reports a frame that is not a JSON object and stays connected", async () => {
  const bus = new FakeBus();
  try {
    await using client = new BusClient(bus.url, { register: () => REGISTER });
    const registered = next(client, "registered");
    client.start();
    await registered;
    const error = next(client, "error");
    for (const socket of bus.sockets) socket.send("[1, 2]");
    assert.match((await error).error.message, /not a JSON object/);
    assert.equal(client.connected, true);
  } finally {
    await bus.close();
  }
});

Deno.test("BusClient reconnects and registers again after the bus restarts on the same port", async () => {
  // The client's port is a relay's, held all along: the bus binds a new port of its own.
  let bus = new FakeBus();
  const relay = new TcpRelay(bus.port);
  let registers = 0;
  const client = new BusClient(relay.url, {
    register: () => ({ ...REGISTER, n: ++registers }),
    backoff: { initialMs: 20, maxMs: 100 },
  });
  try {
    const first = next(client, "registered");
    client.start();
    await first;
    const lost = next(client, "close");
    const reconnecting = next(client, "reconnecting");
    relay.target = undefined; // nothing listens there while the bus is away
    await bus.close();
    assert.equal((await lost).code, 1001);
    assert.equal(client.connected, false);
    assert.equal(client.send({ cmd: "lost" }), false);
    assert.equal((await reconnecting).attempt, 1);
    bus = new FakeBus();
    relay.target = bus.port;
    const reopened = await next(client, "open");
    assert.equal(reopened.reconnect, true);
    await next(client, "registered");
    assert.deepEqual(bus.received, [{ ...REGISTER, n: 2 }]);
  } finally {
    await client.close();
    await bus.close();
    await relay.close();
  }
});

Deno.test("BusClient retries an absent bus with capped, jittered backoff (fake clock)", async () => {
  const clock = new FakeClock();
  await using dead = new DeadPort();
  const client = new BusClient(dead.url, {
    register: () => REGISTER,
    backoff: { initialMs: 100, maxMs: 1000 },
    clock,
    random: () => 0.5,
  });
  const errors: string[] = [];
  client.addEventListener("error", (event) => errors.push(event.error.message));
  const seen: Array<[number, number]> = [];
  let retry = next(client, "reconnecting");
  client.start();
  for (let i = 0; i < 6; i++) {
    const event = await retry;
    seen.push([event.attempt, event.delayMs]);
    assert.equal(clock.pendingTimers, 1);
    retry = next(client, "reconnecting");
    await clock.tick(event.delayMs);
  }
  await retry;
  assert.deepEqual(seen, [[1, 50], [2, 100], [3, 200], [4, 400], [5, 500], [6, 500]]);
  assert.match(errors[0] ?? "", /cannot connect/);
  await client.close();
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("BusClient.close() while connecting leaves nothing pending", async () => {
  // A TCP listener that accepts but never answers the WebSocket handshake.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const client = new BusClient(`ws://127.0.0.1:${listener.addr.port}`, {
    register: () => REGISTER,
  });
  let events = 0;
  for (const type of ["open", "close", "reconnecting"] as const) {
    client.addEventListener(type, () => events++);
  }
  client.start();
  const conn = await accepted;
  await client.close();
  await client.close(); // idempotent
  assert.equal(events, 0);
  assert.equal(client.connected, false);
  conn.close();
  listener.close();
});

Deno.test("BusClient.close() while waiting to reconnect clears the timer; abort closes too", async () => {
  const clock = new FakeClock();
  const controller = new AbortController();
  await using dead = new DeadPort();
  const client = new BusClient(dead.url, {
    register: () => REGISTER,
    clock,
    signal: controller.signal,
  });
  const retry = next(client, "reconnecting");
  client.start();
  await retry;
  assert.equal(clock.pendingTimers, 1);
  controller.abort();
  await client.close();
  assert.equal(clock.pendingTimers, 0);
  client.start(); // no effect once closed
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("BusClient reports a failing register callback and retries later", async () => {
  await using bus = new FakeBus();
  let calls = 0;
  const client = new BusClient(bus.url, {
    register: () => {
      if (++calls === 1) throw new Error("no state yet");
      return REGISTER;
    },
    backoff: { initialMs: 10, maxMs: 20 },
  });
  const error = next(client, "error");
  const registered = next(client, "registered");
  client.start();
  assert.match((await error).error.message, /register callback failed: no state yet/);
  await registered;
  assert.equal(calls, 2);
  assert.deepEqual(bus.received, [REGISTER]);
  await client.close();
});

Deno.test("BusClient dispatches seedbus when no 'registered' follows a v2 register within seedBusAfterMs (fake clock)", async () => {
  const clock = new FakeClock();
  await using bus = new FakeBus({ answer: () => {} });
  const client = new BusClient(bus.url, { register: () => REGISTER, clock, seedBusAfterMs: 2000 });
  const opened = next(client, "open");
  client.start();
  await opened;
  assert.equal(clock.pendingTimers, 1);
  const found = next(client, "seedbus");
  await clock.tick(1999);
  assert.equal(client.seedBus, false);
  await clock.tick(1);
  assert.match((await found).reason, /no 'registered' within 2000 ms/);
  assert.equal(client.seedBus, true);
  // A late `registered` proves a bus that is not the seed's after all.
  const registered = next(client, "registered");
  bus.broadcast({ cmd: "registered", type: "producer", protocol: 2, client: "c1", name: "t" });
  assert.equal((await registered).parsed.ok, true);
  assert.equal(client.seedBus, false);
  await client.close();
});

Deno.test("BusClient stops waiting for the seed bus once 'registered' comes", async () => {
  const clock = new FakeClock();
  await using bus = new FakeBus();
  const client = new BusClient(bus.url, { register: () => REGISTER, clock });
  const registered = next(client, "registered");
  client.start();
  await registered;
  assert.equal(clock.pendingTimers, 0);
  assert.equal(client.seedBus, false);
  await client.close();
});
