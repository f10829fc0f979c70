import assert from "node:assert/strict";
import { BusServer } from "../../bus/server.ts";
import { SchedulerClient, type SchedulerEvictMode } from "../../bus/scheduler_client.ts";
import { FakeLauncher } from "../scheduler/fake_launcher.ts";
import { TcpRelay } from "../fixtures/tcp_relay.ts";

/** Polls `check` every 5 ms until it is true; fails after `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A protocol-2 producer on a raw WebSocket that records every message it gets. */
class RawProducer implements AsyncDisposable {
  readonly messages: Record<string, unknown>[] = [];
  #ws: WebSocket;
  #closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#closed = promise;
    ws.onclose = () => resolve();
    ws.onmessage = (event) => this.messages.push(JSON.parse(String(event.data)));
  }

  static async open(url: string, name: string): Promise<RawProducer> {
    const ws = new WebSocket(url);
    const producer = new RawProducer(ws);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    ws.send(JSON.stringify({ cmd: "register", type: "producer", protocol: 2, name }));
    await until("registered", () => producer.messages.some((m) => m.cmd === "registered"));
    return producer;
  }

  submit(id: string, priority: number): void {
    this.#ws.send(JSON.stringify({ cmd: "job_request", id, payload: { priority, runtime: 1 } }));
  }

  /** The states reported for job `id`, in order. */
  states(id: string): string[] {
    return this.messages.filter((m) => m.cmd === "event" && m.id === id).map((m) =>
      String(m.state)
    );
  }

  /** Where the last `started` of job `id` happened. */
  startedOn(id: string): unknown {
    return this.messages.findLast((m) => m.cmd === "event" && m.id === id && m.state === "started")
      ?.scheduler;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#ws.close();
    await this.#closed;
  }
}

/** A scheduler on the bus whose jobs the test finishes through `fake`. */
function node(
  url: string,
  name: string,
  slots: number,
  options: { evict?: SchedulerEvictMode } = {},
): { fake: FakeLauncher; client: SchedulerClient } {
  const fake = new FakeLauncher();
  const client = new SchedulerClient(url, {
    slots,
    evict: options.evict ?? "requeue",
    launch: fake.launch,
    name,
    backoff: { initialMs: 10, maxMs: 50 },
  });
  client.start();
  return { fake, client };
}

function busOn(): { bus: BusServer; url: string } {
  const bus = new BusServer({ port: 0, pingTimeoutMs: 0 });
  const url = `ws://127.0.0.1:${bus.listen().port}`;
  return { bus, url };
}

Deno.test("SchedulerClient runs each job of the bus once and reports its events", async () => {
  const { bus, url } = busOn();
  await using _bus = bus;
  const a = node(url, "a", 2);
  const b = node(url, "b", 2);
  await using _a = a.client;
  await using _b = b.client;
  await using producer = await RawProducer.open(url, "p");
  await until("both schedulers registered", () => bus.health().schedulers.v2 === 2);
  for (let i = 1; i <= 4; i++) producer.submit(`j${i}`, 5);
  await until("four launches", () => a.fake.launched.length + b.fake.launched.length === 4);
  // Spread: two on each, each job once.
  assert.equal(a.fake.launched.length, 2);
  assert.equal(b.fake.launched.length, 2);
  const ids = [...a.fake.launched, ...b.fake.launched].map((job) => job.id).sort();
  assert.deepEqual(ids, ["j1", "j2", "j3", "j4"]);
  for (const job of [...a.fake.launched, ...b.fake.launched]) job.succeed();
  await until("all succeeded", () => ids.every((id) => producer.states(id).includes("succeeded")));
  for (const id of ids) assert.deepEqual(producer.states(id), ["queued", "started", "succeeded"]);
  assert.ok(["a", "b"].includes(String(producer.startedOn("j1"))));
});

Deno.test("SchedulerClient evicts for a more urgent job and the bus runs the victim again", async () => {
  const { bus, url } = busOn();
  await using _bus = bus;
  const a = node(url, "a", 1);
  const b = node(url, "b", 1);
  await using _a = a.client;
  await using _b = b.client;
  await using producer = await RawProducer.open(url, "p");
  await until("both schedulers registered", () => bus.health().schedulers.v2 === 2);
  producer.submit("low", 8);
  await until("low started", () => producer.states("low").includes("started"));
  producer.submit("mid", 5);
  await until("mid started", () => producer.states("mid").includes("started"));
  const lowNode = producer.startedOn("low") === "a" ? a : b;
  producer.submit("urgent", 1); // no free slot anywhere: preempts the least urgent job
  await until("urgent started", () => producer.states("urgent").includes("started"));
  assert.equal(producer.startedOn("urgent"), producer.startedOn("low"));
  assert.deepEqual(producer.states("low"), ["queued", "started", "evicted", "requeued"]);
  assert.deepEqual(producer.states("mid"), ["queued", "started"]);
  // When a slot frees, the evicted job runs again, once.
  lowNode.fake.last("urgent").succeed();
  await until("low restarted", () => producer.states("low").at(-1) === "started");
  const launches = [...a.fake.launched, ...b.fake.launched].filter((job) => job.id === "low");
  assert.equal(launches.length, 2);
  assert.equal(launches.filter((job) => !job.ended).length, 1);
});

Deno.test("SchedulerClient with evict kill ends an evicted job as evicted", async () => {
  const { bus, url } = busOn();
  await using _bus = bus;
  const a = node(url, "a", 1, { evict: "kill" });
  await using _a = a.client;
  await using producer = await RawProducer.open(url, "p");
  await until("registered", () => bus.health().schedulers.v2 === 1);
  producer.submit("low", 8);
  await until("low started", () => producer.states("low").includes("started"));
  producer.submit("urgent", 0);
  await until("low evicted", () => producer.states("low").includes("evicted"));
  await until("urgent started", () => producer.states("urgent").includes("started"));
  // "evicted" came first on the scheduler's socket: the bus has it as low's final state, so it
  // neither requeues nor relaunches it.
  assert.equal(bus.status().outcomes.evicted, 1);
  assert.equal(bus.status().queue.length, 0);
  assert.deepEqual(producer.states("low"), ["queued", "started", "evicted"]);
  assert.equal(a.fake.launched.filter((job) => job.id === "low").length, 1);
});

Deno.test("SchedulerClient close terminates its jobs and the bus runs them elsewhere", async () => {
  const { bus, url } = busOn();
  await using _bus = bus;
  const a = node(url, "a", 2);
  await using producer = await RawProducer.open(url, "p");
  await until("a registered", () => bus.health().schedulers.v2 === 1);
  producer.submit("x", 3);
  producer.submit("y", 4);
  await until("both started on a", () => a.fake.live().length === 2);
  await a.client.close();
  assert.deepEqual(a.fake.live(), []); // terminated before leaving
  assert.deepEqual(a.fake.launched.map((job) => job.calls), [["terminate"], ["terminate"]]);
  await until(
    "both requeued",
    () => producer.states("x").includes("requeued") && producer.states("y").includes("requeued"),
  );
  const b = node(url, "b", 2);
  await using _b = b.client;
  await until("both started on b", () => b.fake.live().length === 2);
  assert.equal(producer.startedOn("x"), "b");
  // Draining first, "a" was sent nothing while it closed: each job came back once.
  for (const id of ["x", "y"]) {
    assert.equal(producer.states(id).filter((state) => state === "requeued").length, 1);
  }
  for (const job of b.fake.launched) job.succeed();
  await until(
    "x and y succeeded",
    () => producer.states("x").includes("succeeded") && producer.states("y").includes("succeeded"),
  );
});

Deno.test("SchedulerClient keeps its jobs across a bus restart and reports them once back", async () => {
  // The scheduler's port is a relay's, held all along: each bus binds a new port of its own.
  let bus = new BusServer({ port: 0, pingTimeoutMs: 0 });
  await using relay = new TcpRelay(bus.listen().port);
  const url = relay.url;
  const a = node(url, "a", 2);
  try {
    await until("a registered", () => bus.health().schedulers.v2 === 1);
    {
      await using producer = await RawProducer.open(url, "p");
      producer.submit("k", 2);
      await until("k launched", () => a.fake.live().length === 1);
    }
    relay.target = undefined; // nothing listens there while the bus is away
    await bus.close(); // the bus goes away; the job keeps running
    a.fake.last("k").succeed(); // finishes while the bus is away: its event is kept
    bus = new BusServer({ port: 0, pingTimeoutMs: 0 });
    const notices: string[] = [];
    bus.addEventListener("notice", (event) => notices.push(event.message));
    relay.target = bus.listen().port;
    await until("a back", () => bus.health().schedulers.v2 === 1);
    // The new bus does not know "k": it tells the scheduler so, and nothing runs twice.
    await until("the bus handled k", () => notices.some((n) => /unknown job k\b/.test(n)));
    assert.equal(a.fake.launched.length, 1);
  } finally {
    await a.client.close();
    await bus.close();
  }
});

Deno.test("SchedulerClient in suspend mode pauses the victim and resumes it when the slot frees", async () => {
  const { bus, url } = busOn();
  await using _bus = bus;
  const a = node(url, "a", 1, { evict: "suspend" });
  await using _a = a.client;
  await using producer = await RawProducer.open(url, "p");
  await until("registered", () => bus.health().schedulers.v2 === 1);
  producer.submit("low", 8);
  await until("low started", () => producer.states("low").includes("started"));
  producer.submit("urgent", 1);
  await until("urgent started", () => producer.states("urgent").includes("started"));
  assert.deepEqual(producer.states("low"), ["queued", "started", "suspended"]);
  assert.deepEqual(a.fake.last("low").calls, ["suspend"]);
  // The suspended job frees its slot for the bus, but stays with this scheduler.
  producer.submit("later", 9);
  await until("later waits", () => producer.states("later").length > 0);
  a.fake.last("urgent").succeed();
  await until("low resumed", () => producer.states("low").includes("resumed"));
  assert.deepEqual(a.fake.last("low").calls, ["suspend", "resume"]);
  a.fake.last("low").succeed();
  await until("low succeeded", () => producer.states("low").includes("succeeded"));
  await until("later started", () => producer.states("later").includes("started"));
  assert.equal(a.fake.launched.filter((job) => job.id === "low").length, 1);
});

Deno.test("SchedulerClient drains first: schedulers closing together are sent nothing more", async () => {
  const { bus, url } = busOn();
  await using _bus = bus;
  const a = node(url, "a", 2);
  const b = node(url, "b", 2);
  await using producer = await RawProducer.open(url, "p");
  await until("both registered", () => bus.health().schedulers.v2 === 2);
  const ids = ["j1", "j2", "j3", "j4"];
  ids.forEach((id, i) => producer.submit(id, i + 1));
  await until("four running", () => a.fake.live().length + b.fake.live().length === 4);
  await Promise.all([b.client.close(), a.client.close()]);
  await until("all requeued", () => ids.every((id) => producer.states(id).includes("requeued")));
  for (const id of ids) {
    assert.deepEqual(producer.states(id), ["queued", "started", "requeued"]);
  }
  assert.equal(a.fake.launched.length + b.fake.launched.length, 4); // nothing sent while closing
});
