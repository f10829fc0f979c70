import assert from "node:assert/strict";
import { BusServer } from "../../bus/server.ts";
import { SchedulerClient, type SchedulerEvictMode } from "../../bus/scheduler_client.ts";
import { FakeLauncher } from "../scheduler/fake_launcher.ts";
import { TcpRelay } from "../fixtures/tcp_relay.ts";
import { type Message, WsPeer } from "../fixtures/raw_ws.ts";
import { FakeBus, type Message as FakeMessage } from "../fixtures/fake_bus.ts";
import { jobLauncher } from "../../scheduler/job_launcher.ts";
import { commandLauncher } from "../../scheduler/command_launcher.ts";

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
  // b has launched them; the producer hears of the second start a moment later.
  await until("the producer heard x start again", () => {
    return producer.states("x").filter((state) => state === "started").length === 2;
  });
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

/** A scheduler that runs command jobs for real, as `deno task scheduler --allow-command` does. */
function commandNode(
  url: string,
  options: { commands?: string[]; labels?: Record<string, string>; timeoutMs?: number } = {},
): SchedulerClient {
  const client: SchedulerClient = new SchedulerClient(url, {
    name: "c",
    slots: 2,
    timeoutMs: options.timeoutMs ?? 10_000,
    commands: options.commands ?? ["*"],
    labels: options.labels ?? {},
    backoff: { initialMs: 10, maxMs: 50 },
    launch: jobLauncher({
      command: commandLauncher({
        env: { PATH: "/usr/bin:/bin" },
        onOutput: (id, stream, chunk) => client.output(id, stream, chunk),
      }),
    }),
  });
  client.start();
  return client;
}

/** A final event of job `id`. */
const finalOf = (id: string) => (m: Message): boolean =>
  m.cmd === "event" && m.id === id &&
  ["succeeded", "failed", "timed_out"].includes(String(m.state));

Deno.test("SchedulerClient runs command jobs: exit 3, timeout and missing executable come back as results", async () => {
  const { bus, url } = busOn();
  await using _bus = bus;
  await using _client = commandNode(url, { timeoutMs: 5000 });
  await until("registered", () => bus.health().schedulers.v2 === 1);
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2, name: "p" });
  const submit = (id: string, payload: Record<string, unknown>): void =>
    producer.send({ cmd: "job_request", id, payload: { priority: 3, ...payload } });
  submit("exit3", { command: ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"] });
  submit("slow", { command: ["sh", "-c", "echo begun; exec sleep 30"], timeout: 0.2 });
  submit("missing", { command: ["no-such-tool-here", "-x"] });
  const results: Record<string, Message> = {};
  for (let i = 0; i < 3; i++) {
    const event = await producer.next((m) => finalOf(String(m.id))(m), 10_000);
    results[String(event.id)] = event;
  }
  const exit3 = results.exit3!;
  assert.equal(exit3.state, "failed");
  assert.equal(exit3.reason, "exit code 3");
  const result = exit3.result as Record<string, unknown>;
  assert.equal(result.exitCode, 3);
  assert.equal(result.signal, null);
  assert.equal(result.stdoutTail, "to-out\n");
  assert.equal(result.stderrTail, "to-err\n");
  assert.equal(result.stdoutTruncated, false);
  assert.equal(result.scheduler, "c");
  assert.equal(result.attempts, 1);
  assert.equal(typeof result.startedAt, "number");
  assert.ok((result.endedAt as number) >= (result.startedAt as number));
  assert.equal(typeof result.durationMs, "number");

  const slow = results.slow!;
  assert.equal(slow.state, "timed_out");
  const slowResult = slow.result as Record<string, unknown>;
  assert.equal(slowResult.exitCode, null);
  assert.equal(slowResult.signal, "SIGTERM");
  assert.equal(slowResult.stdoutTail, "begun\n");

  const missing = results.missing!;
  assert.equal(missing.state, "failed");
  assert.equal(missing.reason, "could not start: no such executable: no-such-tool-here");
  const missingResult = missing.result as Record<string, unknown>;
  assert.equal(missingResult.startError, "no such executable: no-such-tool-here");
  assert.equal(missingResult.exitCode, null);
  assert.equal(missingResult.startedAt, null);
  // The scheduler keeps serving.
  submit("after", { command: ["true"] });
  const after = await producer.next(finalOf("after"), 10_000);
  assert.equal(after.state, "succeeded");
  assert.equal((after.result as Record<string, unknown>).exitCode, 0);
});

Deno.test("SchedulerClient reports a cancelled command job once it has ended, with its output and signal", async () => {
  const { bus, url } = busOn();
  await using _bus = bus;
  await using _client = commandNode(url);
  await until("registered", () => bus.health().schedulers.v2 === 1);
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2, name: "p" });
  const command = ["sh", "-c", "echo begun; exec sleep 30"];
  producer.send({ cmd: "job_request", id: "c1", payload: { priority: 3, command, follow: true } });
  await producer.next((m) => m.cmd === "output" && m.id === "c1" && m.data === "begun\n");
  producer.send({ cmd: "cancel", id: "c1" });
  const cancelled = await producer.next((m) =>
    m.cmd === "event" && m.id === "c1" && m.final === true
  );
  assert.equal(cancelled.state, "cancelled");
  const result = cancelled.result as Record<string, unknown>;
  assert.equal(result.signal, "SIGTERM");
  assert.equal(result.exitCode, null);
  assert.equal(result.stdoutTail, "begun\n");
});

Deno.test("SchedulerClient reports an evicted command job once its process has ended", async () => {
  const { bus, url } = busOn();
  await using _bus = bus;
  await using _client = commandNode(url); // 2 slots
  await until("registered", () => bus.health().schedulers.v2 === 1);
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2, name: "p" });
  // On SIGTERM the job takes 0.4 s to end.
  const slow = [
    "sh",
    "-c",
    "trap 'sleep 0.4; exit 0' TERM; echo begun; while :; do sleep 0.05; done",
  ];
  for (const id of ["low", "mid"]) {
    const priority = id === "low" ? 8 : 5;
    producer.send({ cmd: "job_request", id, payload: { priority, command: slow, follow: true } });
    await producer.next((m) => m.cmd === "output" && m.id === id && m.data === "begun\n");
  }
  const sent = Date.now();
  producer.send({ cmd: "job_request", id: "urgent", payload: { priority: 1, command: ["true"] } });
  await producer.next((m) => m.cmd === "event" && m.id === "low" && m.state === "evicted", 5000);
  const tookMs = Date.now() - sent;
  assert.ok(tookMs >= 350, `evicted reported ${tookMs} ms after the preemptor, before its end`);
  producer.send({ cmd: "cancel", id: "mid" });
  producer.send({ cmd: "cancel", id: "low" });
  await producer.next((m) => m.cmd === "event" && m.id === "mid" && m.final === true, 5000);
});

/** A fake bus that records the scheduler's messages; `job` sends it a job. */
async function fakeBusWithScheduler(
  options: { commands?: string[]; labels?: Record<string, string> },
): Promise<{ fake: FakeBus; client: SchedulerClient; job: (message: object) => void }> {
  const fake = new FakeBus();
  const client = commandNode(fake.url, options);
  await until("registered", () => fake.received.some((m) => m.cmd === "register"));
  return { fake, client, job: (message) => fake.broadcast({ cmd: "job", ...message }) };
}

/** The events the fake bus got for job `id`. */
function eventsOf(fake: FakeBus, id: string): FakeMessage[] {
  return fake.received.filter((m) => m.cmd === "event" && m.id === id);
}

Deno.test("SchedulerClient registers its labels and commands, and refuses a job it would not run", async () => {
  const { fake, client, job } = await fakeBusWithScheduler({
    commands: ["echo"],
    labels: { os: "linux" },
  });
  await using _fake = fake;
  await using _client = client;
  const register = fake.received.find((m) => m.cmd === "register")!;
  assert.deepEqual(register.labels, { os: "linux" });
  assert.deepEqual(register.commands, ["echo"]);
  job({ id: "no", payload: { priority: 1, command: ["rm", "-rf", "/tmp/x"] }, attempt: 2 });
  job({ id: "gpu", payload: { priority: 1, command: ["echo"], requires: { gpu: "a100" } } });
  job({ id: "yes", payload: { priority: 1, command: ["echo", "hi"] }, attempt: 3 });
  await until(
    "three finals",
    () =>
      ["no", "gpu", "yes"].every((id) =>
        eventsOf(fake, id).length > 0 && eventsOf(fake, id).at(-1)!.state !== "started"
      ),
  );
  const [no] = eventsOf(fake, "no");
  assert.equal(no?.state, "failed");
  assert.equal(no?.reason, "refused: command rm is not allowed here");
  assert.equal((no?.result as Record<string, unknown>).attempts, 2);
  assert.equal(eventsOf(fake, "no").length, 1); // never started
  const [gpu] = eventsOf(fake, "gpu");
  assert.equal(gpu?.reason, "refused: requires gpu=a100, which this scheduler lacks");
  const yes = eventsOf(fake, "yes").at(-1)!;
  assert.equal(yes.state, "succeeded");
  assert.equal((yes.result as Record<string, unknown>).stdoutTail, "hi\n");
  assert.equal((yes.result as Record<string, unknown>).attempts, 3);
  assert.equal(client.runner.counts.started, 1);
});

Deno.test("SchedulerClient streams a follow job's output: coalesced, before its final event", async () => {
  const { fake, client, job } = await fakeBusWithScheduler({});
  await using _fake = fake;
  await using _client = client;
  const script = "for i in 1 2 3 4 5; do echo line $i; done; echo warn >&2";
  job({ id: "f", payload: { priority: 1, command: ["sh", "-c", script], follow: true } });
  job({ id: "quiet", payload: { priority: 1, command: ["echo", "unseen"] } });
  await until("f ended", () => eventsOf(fake, "f").some((m) => m.state === "succeeded"));
  await until("quiet ended", () => eventsOf(fake, "quiet").some((m) => m.state === "succeeded"));
  const forF = fake.received.filter((m) => m.id === "f");
  const outputs = forF.filter((m) => m.cmd === "output");
  const text = (stream: string): string =>
    outputs.filter((m) => m.stream === stream).map((m) => m.data).join("");
  assert.equal(text("stdout"), "line 1\nline 2\nline 3\nline 4\nline 5\n");
  assert.equal(text("stderr"), "warn\n");
  assert.ok(outputs.length <= 4, `${outputs.length} output messages`);
  assert.equal(forF.at(-1)?.cmd, "event"); // the output came first
  assert.equal(fake.received.filter((m) => m.cmd === "output" && m.id === "quiet").length, 0);
});

Deno.test("SchedulerClient rate-limits a follow job's output and says how much it dropped", async () => {
  const { fake, client, job } = await fakeBusWithScheduler({});
  await using _fake = fake;
  await using _client = client;
  const bytes = 1024 * 1024;
  job({
    id: "loud",
    payload: { priority: 1, command: ["head", "-c", String(bytes), "/dev/zero"], follow: true },
  });
  await until("loud ended", () => eventsOf(fake, "loud").some((m) => m.state === "succeeded"));
  const outputs = fake.received.filter((m) => m.cmd === "output" && m.id === "loud");
  const sent = outputs.reduce((sum, m) => sum + String(m.data).length, 0);
  const dropped = outputs.reduce((sum, m) => sum + Number(m.dropped ?? 0), 0);
  assert.ok(sent <= 2 * 65536, `sent ${sent}`);
  assert.equal(sent + dropped, bytes);
  assert.equal(outputs.filter((m) => m.dropped !== undefined).length >= 1, true);
});
