import assert from "node:assert/strict";
import { BusServer, type BusServerOptions } from "../../bus/server.ts";
import { type Message, SilentPeer, withTimeout, WsPeer } from "../fixtures/raw_ws.ts";
import { FakeClock } from "../fake_clock.ts";
import { upgradeAnswer } from "../fixtures/raw_ws.ts";
import { type TokenRole, TokenStore } from "../../bus/token_store.ts";
import { mulberry32 } from "../../producer/generator.ts";
import { throwawayTls } from "./throwaway_tls.ts";

function start(options: BusServerOptions = {}): { bus: BusServer; url: string; http: string } {
  const bus = new BusServer({ port: 0, ...options });
  const { port } = bus.listen();
  return { bus, url: `ws://127.0.0.1:${port}/`, http: `http://127.0.0.1:${port}` };
}

const request = (priority: number, extra: Message = {}): Message => ({
  cmd: "job_request",
  ...extra,
  payload: { priority, runtime: 1 },
});
const isJob = (m: Message): boolean => m.cmd === "job";
const event = (id: string, state: string) => (m: Message): boolean =>
  m.cmd === "event" && m.id === id && m.state === state;

Deno.test("BusServer serves seed producers and seed schedulers with the seed's frames", async () => {
  const { bus, url } = start();
  await using _bus = bus;
  await using scheduler = await WsPeer.open(url);
  await using producer = await WsPeer.open(url);
  await scheduler.register({ type: "scheduler" });
  await producer.register({ type: "producer" });
  producer.send({ cmd: "job_request", payload: { priority: 3, runtime: 2, tag: "x" } });
  assert.deepEqual(await scheduler.next(), { priority: 3, runtime: 2, tag: "x" });
  producer.send({ cmd: "job_request", payload: { priority: 30, runtime: 2 } });
  assert.deepEqual(await producer.next(), {
    cmd: "error",
    op: "job_request",
    reason: "priority must be an integer 0..10, got 30",
  });
  producer.send({ cmd: "job_request", payload: { priority: 1, runtime: 1 } });
  assert.deepEqual(await scheduler.next(), { priority: 1, runtime: 1 });
  assert.equal(producer.frames.length, 1); // nothing but the one error
  assert.equal(bus.health().jobs.delivered, 2);
});

Deno.test("BusServer answers every bad input with an error and keeps serving others", async () => {
  const { bus, url } = start();
  const rejections: string[] = [];
  bus.addEventListener("rejection", (e) => rejections.push(e.reason));
  await using _bus = bus;
  await using bad = await WsPeer.open(url);
  const bads: [string | object | Uint8Array, RegExp | null][] = [
    ["{nope", /not JSON/],
    [new Uint8Array([1, 2, 3]), /binary frames/],
    ["[1]", /must be a JSON object/],
    [{ type: "producer" }, /missing 'cmd'/],
    [{ cmd: "explode" }, /unknown cmd/],
    [{ cmd: "register", type: "king" }, /unknown role/],
    [request(1), /job_request needs a connection registered as producer/],
    [{ cmd: "cancel", id: "a" }, /needs a connection registered as protocol 2 producer/],
    [{ cmd: "event", id: "a", state: "started" }, /needs a connection registered as protocol 2/],
    [{ cmd: "drain" }, /drain needs a connection registered as protocol 2 scheduler/],
    [{ cmd: "register", type: "producer" }, null], // good: a seed register has no answer
    [{ cmd: "job_request" }, /missing 'payload'/],
    [{ cmd: "job_request", payload: { priority: 99, runtime: 1 } }, /priority must be/],
    [{ cmd: "job_request", payload: { priority: 1, runtime: -1 } }, /runtime must be/],
    [{ cmd: "register", type: "scheduler" }, /already registered as producer/],
  ];
  for (const [frame, reason] of bads) {
    bad.send(frame);
    if (!reason) continue;
    const answer = await bad.next();
    assert.equal(answer.cmd, "error");
    assert.match(String(answer.reason), reason);
  }
  // A v2 producer's bad job_request is "rejected"; a good client is still served.
  await using producer = await WsPeer.open(url);
  await using scheduler = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2 });
  await scheduler.register({ type: "scheduler", protocol: 2, slots: 1 });
  producer.send(request(11, { id: "bad" }));
  assert.deepEqual(await producer.next(), {
    cmd: "rejected",
    id: "bad",
    reason: "priority must be an integer 0..10, got 11",
  });
  producer.send(request(4, { id: "good" }));
  assert.deepEqual(await producer.next(), { cmd: "accepted", id: "good" });
  assert.deepEqual(await scheduler.next(isJob), {
    cmd: "job",
    id: "good",
    payload: { priority: 4, runtime: 1 },
    attempt: 1,
  });
  assert.ok(rejections.length >= 5 && rejections.length <= 6, `${rejections.length} lines`);
});

Deno.test("BusServer sends a seed scheduler nothing but payloads, whatever it sends", async () => {
  const { bus, url } = start();
  await using _bus = bus;
  await using seed = await WsPeer.open(url);
  await using producer = await WsPeer.open(url);
  await seed.register({ type: "scheduler" });
  for (const junk of ["junk", "[]", '{"cmd":"event"}', '{"cmd":"register","type":"producer"}']) {
    seed.send(junk);
  }
  await producer.register({ type: "producer", protocol: 2 });
  producer.send(request(2, { id: "p" }));
  assert.deepEqual(await seed.next(), { priority: 2, runtime: 1 });
  assert.equal(seed.frames.length, 1);
});

Deno.test("BusServer closes a connection whose frame is over the limit with 1009", async () => {
  const { bus, url } = start({ maxFrameBytes: 1024 });
  await using _bus = bus;
  await using big = await WsPeer.open(url);
  big.send({ cmd: "register", type: "producer", pad: "x".repeat(2000) });
  assert.match(String((await big.next()).reason), /frame of \d+ bytes is over the limit of 1024/);
  assert.equal((await withTimeout(big.closed, 3000, "close")).code, 1009);
  await using fine = await WsPeer.open(url);
  await fine.register({ type: "monitor", protocol: 2 });
});

Deno.test("BusServer holds jobs while no scheduler is there, then they flow by priority", async () => {
  const { bus, url } = start();
  await using _bus = bus;
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2, name: "feeder" });
  for (const [id, priority] of [["a", 5], ["b", 1], ["c", 5]] as const) {
    producer.send(request(priority, { id }));
    assert.deepEqual(await producer.next((m) => m.cmd === "accepted"), {
      cmd: "accepted",
      id,
      waiting: "no scheduler connected",
    });
  }
  assert.equal(bus.health().jobs.queued, 3);
  await using scheduler = await WsPeer.open(url);
  await scheduler.register({ type: "scheduler", protocol: 2, slots: 1, name: "n1" });
  assert.equal((await scheduler.next(isJob)).id, "b");
  scheduler.send({ cmd: "event", id: "b", state: "started" });
  scheduler.send({ cmd: "event", id: "b", state: "succeeded", result: { code: 0 } });
  const done = await producer.next(event("b", "succeeded"));
  assert.equal(done.scheduler, "n1");
  assert.deepEqual(done.result, { code: 0 });
  assert.equal(done.final, true);
  assert.equal((await scheduler.next(isJob)).id, "a");
  // A producer that missed the outcome (say, while reconnecting) learns it from its re-send.
  producer.send(request(1, { id: "b" }));
  assert.deepEqual(await producer.next((m) => m.cmd === "accepted"), {
    cmd: "accepted",
    id: "b",
    duplicate: true,
    state: "succeeded",
    final: true,
    scheduler: "n1",
    result: { code: 0 },
  });
  producer.send(request(5, { id: "a" }));
  assert.deepEqual(await producer.next((m) => m.cmd === "accepted"), {
    cmd: "accepted",
    id: "a",
    duplicate: true,
    state: "queued",
    scheduler: "n1",
  });
});

Deno.test("BusServer gives the job of a scheduler that disconnects to another one", async () => {
  const { bus, url } = start({ jobEventStates: ["requeued"] });
  const dispatched: string[] = [];
  bus.addEventListener("job", (e) => dispatched.push(e.job.state));
  await using _bus = bus;
  await using monitor = await WsPeer.open(url);
  await monitor.register({ type: "monitor", protocol: 2 });
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2 });
  const first = await WsPeer.open(url);
  await first.register({ type: "scheduler", protocol: 2, slots: 1, name: "first" });
  producer.send(request(3, { id: "j" }));
  assert.equal((await first.next(isJob)).id, "j");
  first.send({ cmd: "event", id: "j", state: "started" });
  await monitor.next(event("j", "started"));
  await first.close();
  const requeued = await producer.next(event("j", "requeued"));
  assert.equal(requeued.reason, "scheduler lost");
  await using second = await WsPeer.open(url);
  await second.register({ type: "scheduler", protocol: 2, slots: 1, name: "second" });
  assert.equal((await second.next(isJob)).id, "j");
  assert.deepEqual(
    monitor.all().filter((m) => m.id === "j").map((m) => m.state),
    ["queued", "started", "requeued"],
  );
  assert.deepEqual(dispatched, ["requeued"]); // jobEventStates filters the server's own events
});

Deno.test("BusServer treats a scheduler that stops answering pings as gone", async () => {
  const { bus, url, http } = start({ pingTimeoutMs: 1000 });
  await using _bus = bus;
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2 });
  const port = Number(new URL(http).port);
  const silent = await SilentPeer.open(port);
  try {
    await silent.send({ cmd: "register", type: "scheduler", protocol: 2, slots: 1 });
    producer.send(request(3, { id: "j" }));
    await producer.next((m) => m.cmd === "accepted");
    for (let i = 0; bus.status().schedulers[0]?.running.length !== 1; i++) {
      assert.ok(i < 100, "the silent scheduler never got the job");
      await new Promise((r) => setTimeout(r, 20));
    }
    const started = Date.now();
    await producer.next(event("j", "requeued"), 8000);
    const tookMs = Date.now() - started;
    assert.ok(tookMs < 7000, `took ${tookMs} ms`);
    assert.deepEqual(bus.health().schedulers, { seed: 0, v2: 0 });
  } finally {
    silent.close();
  }
});

Deno.test("BusServer /health, /status, 404 and 426", async () => {
  const { bus, url, http } = start();
  await using _bus = bus;
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2 });
  await using scheduler = await WsPeer.open(url);
  await scheduler.register({ type: "scheduler", protocol: 2, slots: 1, name: "s" });
  producer.send(request(2, { id: "run" }));
  producer.send(request(6, { id: "wait" }));
  await producer.next((m) => m.id === "wait" && m.cmd === "accepted");
  await scheduler.next(isJob);
  const health = await (await fetch(`${http}/health`)).json();
  assert.equal(health.status, "ok");
  assert.deepEqual(
    { ...health, uptimeS: 0 },
    {
      status: "ok",
      uptimeS: 0,
      producers: 1,
      schedulers: { seed: 0, v2: 1 },
      monitors: 0,
      jobs: { received: 2, delivered: 1, queued: 1 },
      store: { kind: "memory", available: true },
    },
  );
  const status = await (await fetch(`${http}/status`)).json();
  assert.deepEqual(status.queue, {
    length: 1,
    byPriority: { "6": 1 },
    jobs: [{ id: "wait", priority: 6, waiting: null }],
  });
  const [{ since, ...run }] = status.schedulers[0].running;
  assert.deepEqual(run, { id: "run", priority: 2, state: "dispatched" });
  assert.ok(since > 0 && status.schedulers[0].heardAt >= since - 1000);
  assert.equal(status.schedulers[0].name, "s");
  const missing = await fetch(`${http}/nope`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
  const root = await fetch(`${http}/`);
  assert.equal(root.status, 426);
  await root.body?.cancel();
});

Deno.test("BusServer v2 producer: idempotent ids, cancel, set_priority, owner by name", async () => {
  const { bus, url } = start();
  await using _bus = bus;
  const first = await WsPeer.open(url);
  await first.register({ type: "producer", protocol: 2, name: "feeder" });
  first.send(request(5, { id: "a" }));
  first.send(request(5, { id: "a" }));
  first.send(request(5, { id: "b" }));
  first.send(request(5));
  const answers = [];
  for (let i = 0; i < 4; i++) answers.push(await first.next((m) => m.cmd === "accepted"));
  assert.deepEqual(answers.slice(0, 3), [
    { cmd: "accepted", id: "a", waiting: "no scheduler connected" },
    { cmd: "accepted", id: "a", duplicate: true, state: "queued" },
    { cmd: "accepted", id: "b", waiting: "no scheduler connected" },
  ]);
  assert.equal(typeof answers[3]?.id, "string");
  await first.close();
  // The same name after a reconnect owns the jobs; another producer does not.
  await using other = await WsPeer.open(url);
  await other.register({ type: "producer", protocol: 2 });
  other.send({ cmd: "cancel", id: "a" });
  assert.deepEqual(await other.next(), {
    cmd: "error",
    op: "cancel",
    id: "a",
    reason: "not your job",
  });
  await using again = await WsPeer.open(url);
  await again.register({ type: "producer", protocol: 2, name: "feeder" });
  again.send({ cmd: "set_priority", id: "b", priority: 0 });
  assert.deepEqual(await again.next(), { cmd: "ack", op: "set_priority", id: "b" });
  again.send({ cmd: "cancel", id: "a" });
  assert.deepEqual(await again.next(), { cmd: "ack", op: "cancel", id: "a" });
  const cancelled = await again.next(event("a", "cancelled"));
  assert.equal(cancelled.priority, 5);
  assert.deepEqual(bus.status().queue.byPriority, { "0": 1, "5": 1 });
});

Deno.test("BusServer --broadcast gives every job to every scheduler, held while none", async () => {
  const { bus, url } = start({ broadcast: true });
  await using _bus = bus;
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer" });
  producer.send(request(4));
  await using seed = await WsPeer.open(url);
  await using v2 = await WsPeer.open(url);
  await v2.register({ type: "scheduler", protocol: 2, slots: 1 });
  assert.deepEqual((await v2.next(isJob)).payload, { priority: 4, runtime: 1 });
  await seed.register({ type: "scheduler" });
  producer.send(request(7));
  assert.deepEqual(await seed.next(), { priority: 7, runtime: 1 });
  assert.deepEqual((await v2.next(isJob)).payload, { priority: 7, runtime: 1 });
  assert.equal(bus.health().jobs.delivered, 3);
});

Deno.test("BusServer closes every connection with 1001 on close()", async () => {
  const { bus, url } = start();
  const peer = await WsPeer.open(url);
  await peer.register({ type: "monitor", protocol: 2 });
  await bus.close();
  await bus.close(); // idempotent
  assert.equal((await withTimeout(peer.closed, 3000, "close")).code, 1001);
  assert.throws(() => bus.listen(), /closed/);
});

Deno.test("BusServer close() gives up on a peer that never answers the close", async () => {
  const { bus, http } = start({ pingTimeoutMs: 0 });
  const silent = await SilentPeer.open(Number(new URL(http).port));
  try {
    await silent.send({ cmd: "register", type: "monitor", protocol: 2 });
    for (let i = 0; bus.health().monitors !== 1; i++) {
      assert.ok(i < 100, "the monitor never registered");
      await new Promise((r) => setTimeout(r, 20));
    }
    const started = Date.now();
    await bus.close();
    assert.ok(Date.now() - started < 6000);
  } finally {
    silent.close();
  }
});

Deno.test("BusServer warns when a scheduler registers with a name a live scheduler uses", async () => {
  const { bus, url } = start();
  await using _bus = bus;
  const warnings: string[] = [];
  bus.addEventListener("notice", (e) => {
    if (e.level === "warning") warnings.push(e.message);
  });
  await using first = await WsPeer.open(url);
  const answer = await first.register({ type: "scheduler", protocol: 2, slots: 1, name: "n" });
  assert.equal(answer?.warning, undefined);
  await using second = await WsPeer.open(url);
  const again = await second.register({ type: "scheduler", protocol: 2, slots: 1, name: "n" });
  assert.match(String(again?.warning), /scheduler name "n" is already used by connection c1/);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^c2: scheduler name "n" is already used by connection c1/);
  await using unnamed = await WsPeer.open(url);
  await unnamed.register({ type: "scheduler", protocol: 2, slots: 1 });
  assert.equal(warnings.length, 1);
});

// --- Issue 9: command jobs placed by labels and allow-list, waiting reasons, retries ---

const commandRequest = (id: string, payload: Message): Message => ({
  cmd: "job_request",
  id,
  payload,
});

Deno.test("BusServer places a command job on a matching scheduler, saying why it waits till then", async () => {
  const { bus, url, http } = start();
  await using _bus = bus;
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2, name: "alice" });
  await using plain = await WsPeer.open(url);
  await plain.register({ type: "scheduler", protocol: 2, slots: 2, name: "plain" });
  const payload = {
    priority: 3,
    command: ["sh", "-c", "true"],
    name: "r",
    requires: { gpu: "a100" },
  };
  producer.send(commandRequest("r", payload));
  assert.deepEqual(await producer.next((m) => m.cmd === "accepted"), {
    cmd: "accepted",
    id: "r",
    waiting: "no scheduler with gpu=a100",
  });
  producer.send(commandRequest("sh", { priority: 4, command: ["sh", "-c", "true"] }));
  assert.deepEqual(await producer.next((m) => m.cmd === "accepted"), {
    cmd: "accepted",
    id: "sh",
    waiting: "no scheduler allows command sh",
  });
  const status = await (await fetch(`${http}/status`)).json();
  assert.deepEqual(status.queue.jobs, [
    { id: "r", priority: 3, name: "r", waiting: "no scheduler with gpu=a100" },
    { id: "sh", priority: 4, waiting: "no scheduler allows command sh" },
  ]);
  await using gpu = await WsPeer.open(url);
  await gpu.register({
    type: "scheduler",
    protocol: 2,
    slots: 2,
    name: "gpu",
    labels: { gpu: "a100" },
    commands: ["sh"],
  });
  assert.deepEqual(await gpu.next(isJob), { cmd: "job", id: "r", payload, attempt: 1 });
  assert.equal((await gpu.next(isJob)).id, "sh");
  assert.equal(plain.frames.filter((f) => JSON.parse(f).cmd === "job").length, 0);
});

Deno.test("BusServer rejects bad command payloads and bad registrations with their reasons", async () => {
  const { bus, url } = start();
  await using _bus = bus;
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2 });
  producer.send(commandRequest("both", { priority: 3, command: ["sh"], runtime: 2 }));
  assert.deepEqual(await producer.next(), {
    cmd: "rejected",
    id: "both",
    reason: "a command job takes no 'runtime'",
  });
  producer.send(commandRequest("env", { priority: 3, command: ["sh"], env: { "1X": "y" } }));
  assert.match(String((await producer.next()).reason), /^env: name "1X" must be letters/);
  await using scheduler = await WsPeer.open(url);
  scheduler.send({
    cmd: "register",
    type: "scheduler",
    protocol: 2,
    slots: 1,
    labels: { gpu: ["a100"] },
  });
  const error = await scheduler.next();
  assert.equal(error.cmd, "error");
  assert.match(String(error.reason), /^register: labels\.gpu must be a string/);
});

Deno.test("BusServer retries a failed command job after its backoff, with the next attempt", async () => {
  const clock = new FakeClock();
  const { bus, url } = start({ clock });
  await using _bus = bus;
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2, name: "alice" });
  await using scheduler = await WsPeer.open(url);
  await scheduler.register({ type: "scheduler", protocol: 2, slots: 1, commands: ["*"] });
  producer.send(commandRequest("r", { priority: 3, command: ["false"], retries: 1 }));
  assert.equal((await scheduler.next(isJob)).attempt, 1);
  const result = { exitCode: 1, signal: null };
  scheduler.send({ cmd: "event", id: "r", state: "failed", result });
  const requeued = await producer.next(event("r", "requeued"));
  assert.equal(requeued.reason, "retry 1 of 1 in 1 s (exit code 1)");
  await clock.tick(1000);
  assert.equal((await scheduler.next(isJob)).attempt, 2);
  scheduler.send({ cmd: "event", id: "r", state: "failed", result: { ...result, exitCode: 2 } });
  const final = await producer.next(event("r", "failed"));
  assert.equal(final.final, true);
  assert.deepEqual(final.result, { exitCode: 2, signal: null });
});

Deno.test("BusServer close() stops a retry's backoff timer", async () => {
  const { bus, url } = start();
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2, name: "alice" });
  await using scheduler = await WsPeer.open(url);
  await scheduler.register({ type: "scheduler", protocol: 2, slots: 1, commands: ["*"] });
  producer.send(commandRequest("r", { priority: 3, command: ["false"], retries: 3 }));
  await scheduler.next(isJob);
  scheduler.send({ cmd: "event", id: "r", state: "failed", result: { exitCode: 1 } });
  await producer.next(event("r", "requeued"));
  await bus.close(); // the 1 s timer would fail the op sanitizer if left running
});

Deno.test("BusServer answers list and show to producers and monitors, not to schedulers", async () => {
  const { bus, url } = start();
  await using _bus = bus;
  await using ann = await WsPeer.open(url);
  await ann.register({ type: "producer", protocol: 2, name: "ann" });
  await using bob = await WsPeer.open(url);
  await bob.register({ type: "producer", protocol: 2, name: "bob" });
  await using scheduler = await WsPeer.open(url);
  await scheduler.register({ type: "scheduler", protocol: 2, slots: 1, name: "n1" });
  ann.send(request(4, { id: "run" }));
  assert.equal((await scheduler.next(isJob)).id, "run");
  scheduler.send({ cmd: "event", id: "run", state: "started" });
  await ann.next(event("run", "started"));
  ann.send({ cmd: "job_request", id: "w1", payload: { priority: 6, runtime: 1, name: "render" } });
  bob.send(request(5, { id: "w0" })); // not more urgent than "run": waits
  bob.send(request(9)); // a bus-assigned id
  const assigned = String((await bob.next((m) => m.cmd === "accepted" && m.id !== "w0")).id);
  await ann.next((m) => m.cmd === "accepted" && m.id === "w1");
  ann.send({ cmd: "list" });
  const all = await ann.next((m) => m.cmd === "jobs");
  assert.equal(all.total, 4);
  const jobs = all.jobs as Message[];
  assert.deepEqual(jobs.map((j) => [j.id, j.state, j.owner]), [
    ["w0", "queued", "bob"],
    ["w1", "queued", "ann"],
    [assigned, "queued", "bob"],
    ["run", "started", "ann"],
  ]);
  assert.equal(jobs[1]!.name, "render");
  assert.equal(jobs[3]!.scheduler, "n1");
  assert.equal(jobs[3]!.attempts, 1);
  // The bus-assigned job ends and is still shown; filters and limit.
  bob.send({ cmd: "cancel", id: assigned });
  await bob.next(event(assigned, "cancelled"));
  scheduler.send({ cmd: "event", id: "run", state: "succeeded", result: { exitCode: 0 } });
  await ann.next(event("run", "succeeded"));
  await using monitor = await WsPeer.open(url);
  await monitor.register({ type: "monitor", protocol: 2 });
  monitor.send({ cmd: "list", states: ["succeeded", "cancelled"], limit: 1 });
  const done = await monitor.next((m) => m.cmd === "jobs");
  assert.equal(done.total, 2);
  assert.deepEqual((done.jobs as Message[]).map((j) => j.id), ["run"]); // newest first
  monitor.send({ cmd: "list", owner: "bob", name: "w" });
  const bobs = await monitor.next((m) => m.cmd === "jobs");
  assert.deepEqual((bobs.jobs as Message[]).map((j) => j.id), ["w0"]);
  monitor.send({ cmd: "show", id: assigned });
  const shown = (await monitor.next((m) => m.cmd === "job_info")).job as Message;
  assert.equal(shown.state, "cancelled");
  assert.equal(shown.reason, "cancelled by its owner");
  assert.deepEqual(shown.payload, { priority: 9, runtime: 1 });
  assert.deepEqual((shown.history as Message[]).map((h) => h.state), ["queued", "cancelled"]);
  ann.send({ cmd: "show", id: "run" });
  const run = (await ann.next((m) => m.cmd === "job_info")).job as Message;
  assert.deepEqual(run.result, { exitCode: 0 });
  assert.deepEqual((run.history as Message[]).map((h) => h.state), [
    "queued",
    "started",
    "succeeded",
  ]);
  ann.send({ cmd: "show", id: "nope" });
  assert.deepEqual(await ann.next(), {
    cmd: "error",
    reason: "unknown job",
    op: "show",
    id: "nope",
  });
  ann.send({ cmd: "list", limit: 0 });
  assert.deepEqual(await ann.next(), {
    cmd: "error",
    reason: "list: 'limit' must be an integer 1..10000, got 0",
    op: "list",
  });
  scheduler.send({ cmd: "list" });
  assert.deepEqual(await scheduler.next((m) => m.cmd === "error"), {
    cmd: "error",
    reason: "list needs a connection registered as protocol 2 producer or monitor",
    op: "list",
  });
  // "w0" went to n1 once "run" ended: at a scheduler, after the one waiting in the bus.
  ann.send({ cmd: "set_priority", id: "w1", priority: 8 });
  await ann.next((m) => m.cmd === "ack");
  bob.send({ cmd: "list", states: ["queued"] });
  const queued = await bob.next((m) => m.cmd === "jobs");
  assert.deepEqual((queued.jobs as Message[]).map((j) => [j.id, j.priority, j.scheduler]), [
    ["w1", 8, undefined],
    ["w0", 5, "n1"],
  ]);
});

Deno.test("BusServer relays a followed job's output to its owner's connections only", async () => {
  const { bus, url } = start();
  await using _bus = bus;
  const notices: string[] = [];
  bus.addEventListener("notice", (e) => notices.push(e.message));
  await using ann = await WsPeer.open(url);
  await ann.register({ type: "producer", protocol: 2, name: "ann" });
  await using ann2 = await WsPeer.open(url);
  await ann2.register({ type: "producer", protocol: 2, name: "ann" });
  await using bob = await WsPeer.open(url);
  await bob.register({ type: "producer", protocol: 2, name: "bob" });
  await using monitor = await WsPeer.open(url);
  await monitor.register({ type: "monitor", protocol: 2 });
  await using at = await WsPeer.open(url);
  await at.register({ type: "scheduler", protocol: 2, slots: 1, name: "n1" });
  ann.send(request(3, { id: "j" }));
  await at.next(isJob);
  await using other = await WsPeer.open(url);
  await other.register({ type: "scheduler", protocol: 2, slots: 1, name: "n2" });
  const piece = { cmd: "output", id: "j", stream: "stdout", data: "héllo\n" };
  other.send({ ...piece, data: "not mine" }); // not at that scheduler: ignored
  other.send({ cmd: "list" }); // its answer says the output before it was handled
  await other.next((m) => m.cmd === "error");
  assert.ok(notices.includes("ignored output of job j: not at scheduler n2"));
  at.send(piece);
  at.send({ cmd: "output", id: "j", stream: "stderr", data: "", dropped: 12345 });
  assert.deepEqual(await ann.next((m) => m.cmd === "output"), piece);
  assert.deepEqual(await ann2.next((m) => m.cmd === "output"), piece);
  assert.equal((await ann.next((m) => m.cmd === "output")).dropped, 12345);
  // What the bus sends a connection after the outputs arrives after them: bob and the
  // monitor got none.
  at.send({ cmd: "event", id: "j", state: "started" });
  await monitor.next(event("j", "started"));
  bob.send({ cmd: "list" });
  await bob.next((m) => m.cmd === "jobs");
  assert.equal(monitor.all().some((m) => m.cmd === "output"), false);
  assert.equal(bob.all().some((m) => m.cmd === "output"), false);
  assert.equal(ann.all().filter((m) => m.cmd === "output").length, 2);
  // A producer may not send output.
  bob.send(piece);
  assert.match(
    String((await bob.next((m) => m.cmd === "error")).reason),
    /output needs a connection registered as protocol 2 scheduler/,
  );
});

Deno.test("BusServer drops output for an owner that does not read, and counts it", async () => {
  const { bus, url, http } = start({ maxFrameBytes: 1 << 20, maxBufferedBytes: 1 << 16 });
  await using _bus = bus;
  await using ann = await WsPeer.open(url);
  await ann.register({ type: "producer", protocol: 2, name: "ann" });
  await using scheduler = await WsPeer.open(url);
  await scheduler.register({ type: "scheduler", protocol: 2, slots: 1, name: "n1" });
  const silent = await SilentPeer.open(Number(new URL(http).port));
  try {
    await silent.send({ cmd: "register", type: "producer", protocol: 2, name: "ann" });
    for (let i = 0; bus.health().producers !== 2; i++) {
      assert.ok(i < 100, "the silent producer never registered");
      await new Promise((r) => setTimeout(r, 20));
    }
    ann.send(request(3, { id: "j" }));
    await scheduler.next(isJob);
    const data = "x".repeat(500_000);
    for (let i = 0; bus.status().droppedOutput === 0; i++) {
      assert.ok(i < 400, "nothing was dropped");
      scheduler.send({ cmd: "output", id: "j", stream: "stdout", data });
      await ann.next((m) => m.cmd === "output", 10_000); // the reader that reads gets each one
    }
    assert.ok(bus.status().droppedOutput > 0);
  } finally {
    silent.close();
  }
});

Deno.test("BusServer's list says why a job waits with no scheduler that can run it", async () => {
  const { bus, url } = start();
  await using _bus = bus;
  await using ann = await WsPeer.open(url);
  await ann.register({ type: "producer", protocol: 2, name: "ann" });
  await using scheduler = await WsPeer.open(url);
  await scheduler.register({ type: "scheduler", protocol: 2, slots: 1, name: "cpu" });
  ann.send({
    cmd: "job_request",
    id: "gpu-job",
    payload: { priority: 3, command: ["render"], requires: { gpu: "a100" } },
  });
  await ann.next((m) => m.cmd === "accepted" && m.id === "gpu-job");
  ann.send({ cmd: "list" });
  const { jobs } = await ann.next((m) => m.cmd === "jobs");
  assert.deepEqual((jobs as Message[]).map((j) => [j.id, j.state, j.waiting]), [
    ["gpu-job", "queued", "no scheduler with gpu=a100"],
  ]);
});

// --- Authentication (--auth) ---

/** A bus with a token file: `tokens` by name (role), each secret in `secrets`. */
async function startAuthed(
  roles: Record<string, TokenRole>,
  options: BusServerOptions = {},
): Promise<
  ReturnType<typeof start> & {
    port: number;
    secrets: Record<string, string>;
    file: string;
    [Symbol.asyncDispose](): Promise<void>;
  }
> {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/auth.json`;
  const store = await TokenStore.load(file, {
    missingOk: true,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const secrets: Record<string, string> = {};
  for (const [name, role] of Object.entries(roles)) secrets[name] = await store.add(name, role);
  const started = start({ auth: store, ...options });
  return {
    ...started,
    port: started.bus.addr!.port,
    secrets,
    file,
    [Symbol.asyncDispose]: async () => {
      await started.bus.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const bearerInit = (secret: string | undefined): { headers: Record<string, string> } => ({
  headers: { authorization: `Bearer ${secret}` },
});

Deno.test("BusServer --auth: a missing or unknown token is 401 before the upgrade", async () => {
  await using b = await startAuthed({ alice: "producer" });
  assert.deepEqual(
    [(await upgradeAnswer(b.port)).status, JSON.parse((await upgradeAnswer(b.port)).body)],
    [401, { error: "missing token" }],
  );
  const unknown = await upgradeAnswer(b.port, { authorization: "Bearer sched_guess" });
  assert.deepEqual([unknown.status, JSON.parse(unknown.body)], [401, { error: "unknown token" }]);
  assert.equal(b.bus.health().producers, 0);
  await using alice = await WsPeer.open(b.url, 3000, bearerInit(b.secrets.alice));
  const registered = await alice.register({ type: "producer", protocol: 2, name: "mallory" });
  assert.equal(registered?.name, "alice", "the token's name, not the declared one");
});

Deno.test("BusServer --auth: the sched.v2 subprotocol form, answered with sched.v2", async () => {
  await using b = await startAuthed({ watcher: "monitor" });
  const token = btoa(b.secrets.watcher!).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
  await using peer = await WsPeer.open(b.url, 3000, { protocols: ["sched.v2", `bearer.${token}`] });
  assert.equal(peer.socket.protocol, "sched.v2");
  assert.equal((await peer.register({ type: "monitor", protocol: 2 }))?.name, "watcher");
  const wrong = await upgradeAnswer(b.port, { "sec-websocket-protocol": "sched.v2, bearer.eA" });
  assert.equal(wrong.status, 401);
});

Deno.test("BusServer --auth: a revoked token is refused, and its connections closed 1008", async () => {
  const clock = new FakeClock();
  await using b = await startAuthed({ alice: "producer", bob: "producer" }, { clock });
  await using alice = await WsPeer.open(b.url, 3000, bearerInit(b.secrets.alice));
  await using bob = await WsPeer.open(b.url, 3000, bearerInit(b.secrets.bob));
  await alice.register({ type: "producer", protocol: 2 });
  await bob.register({ type: "producer", protocol: 2 });
  await (await TokenStore.load(b.file)).revoke("alice");
  let closed: CloseEvent | undefined;
  alice.closed.then((event) => closed = event);
  for (let i = 0; i < 500 && !closed; i++) { // the bus looks at the file once a (fake) second
    await clock.tick(1000);
    await new Promise((resolve) => setTimeout(resolve, 1)); // its look is real I/O
  }
  assert.deepEqual([closed?.code, closed?.reason], [1008, "token revoked"]);
  const again = await upgradeAnswer(b.port, { authorization: `Bearer ${b.secrets.alice}` });
  assert.deepEqual([again.status, JSON.parse(again.body)], [401, { error: "unknown token" }]);
  bob.send(request(1, { id: "still-here" }));
  assert.equal((await bob.next()).cmd, "accepted", "other tokens keep their connections");
});

Deno.test("BusServer --auth: 429 after 10 failed upgrades from an address within 60 s", async () => {
  const clock = new FakeClock();
  await using b = await startAuthed({ alice: "producer" }, { clock });
  const warnings: string[] = [];
  b.bus.addEventListener("notice", (e) => {
    if (e.level === "warning") warnings.push(e.message);
  });
  for (let i = 0; i < 10; i++) {
    const answer = await upgradeAnswer(b.port, { authorization: `Bearer sched_guess${i}` });
    assert.equal(answer.status, 401, `attempt ${i + 1}`);
  }
  const limited = await upgradeAnswer(b.port, { authorization: `Bearer ${b.secrets.alice}` });
  assert.equal(limited.status, 429);
  assert.match(JSON.parse(limited.body).error, /^too many failed attempts from 127\.0\.0\.1/);
  const status = await fetch(`${b.http}/status`);
  assert.equal(status.status, 429); // read endpoints are limited too
  await status.body?.cancel();
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0]!, /^auth: unknown token from 127\.0\.0\.1/);
  await clock.tick(60_000);
  await using alice = await WsPeer.open(b.url, 3000, bearerInit(b.secrets.alice));
  assert.equal((await alice.register({ type: "producer", protocol: 2 }))?.name, "alice");
});

Deno.test("BusServer --auth: a token registers only as its role (admin as any)", async () => {
  await using b = await startAuthed({
    alice: "producer",
    node: "scheduler",
    watcher: "monitor",
    root: "admin",
  });
  const cases: [string, string, string | undefined][] = [
    ["alice", "scheduler", "token alice (producer) may not register as scheduler"],
    ["alice", "monitor", "token alice (producer) may not register as monitor"],
    ["node", "producer", "token node (scheduler) may not register as producer"],
    ["watcher", "producer", "token watcher (monitor) may not register as producer"],
    ["watcher", "scheduler", "token watcher (monitor) may not register as scheduler"],
    ["alice", "producer", undefined],
    ["node", "scheduler", undefined],
    ["watcher", "monitor", undefined],
    ["root", "producer", undefined],
    ["root", "scheduler", undefined],
    ["root", "monitor", undefined],
  ];
  for (const [token, type, refusal] of cases) {
    await using peer = await WsPeer.open(b.url, 3000, bearerInit(b.secrets[token]));
    peer.send({ cmd: "register", type, protocol: 2, slots: 1 });
    const answer = await peer.next();
    if (refusal === undefined) {
      assert.deepEqual([answer.cmd, answer.name], ["registered", token], `${token} ${type}`);
      continue;
    }
    const role = token === "alice" ? "producer" : token === "node" ? "scheduler" : "monitor";
    assert.deepEqual(answer, {
      cmd: "error",
      op: "register",
      reason: `${refusal}: not allowed for role ${role}`,
    });
    // The connection keeps its rights: it may still register as what its token is.
    assert.equal((await peer.register({ type: role, protocol: 2, slots: 1 }))?.name, token);
  }
});

Deno.test("BusServer --auth: another producer's name does not own its jobs (the attack fails)", async () => {
  await using b = await startAuthed({ alice: "producer", mallory: "producer" });
  await using alice = await WsPeer.open(b.url, 3000, bearerInit(b.secrets.alice));
  await alice.register({ type: "producer", protocol: 2, name: "alice" });
  alice.send(request(5, { id: "v-1" }));
  assert.equal((await alice.next()).cmd, "accepted");
  await using mallory = await WsPeer.open(b.url, 3000, bearerInit(b.secrets.mallory));
  const registered = await mallory.register({ type: "producer", protocol: 2, name: "alice" });
  assert.equal(registered?.name, "mallory");
  // Ids are scoped per owner: mallory's "v-1" is mallory/v-1, which does not exist.
  mallory.send({ cmd: "cancel", id: "v-1" });
  assert.deepEqual(await mallory.next(), {
    cmd: "error",
    op: "cancel",
    id: "v-1",
    reason: "unknown job",
  });
  mallory.send({ cmd: "set_priority", id: "v-1", priority: 10 });
  assert.equal((await mallory.next()).reason, "unknown job");
  assert.deepEqual(b.bus.status().queue.jobs.map((j) => [j.id, j.priority]), [["alice/v-1", 5]]);
  alice.send({ cmd: "cancel", id: "v-1" });
  assert.deepEqual(await alice.next((m) => m.cmd === "ack"), {
    cmd: "ack",
    op: "cancel",
    id: "v-1",
  });
  assert.ok(!mallory.all().some((m) => m.cmd === "event"), "mallory hears nothing of v-1");
});

Deno.test("BusServer --auth: a rogue registering as S1 cannot make the real S1 kill its job", async () => {
  await using b = await startAuthed({ S1: "scheduler", rogue: "scheduler", alice: "producer" });
  await using s1 = await WsPeer.open(b.url, 3000, bearerInit(b.secrets.S1));
  await s1.register({ type: "scheduler", protocol: 2, slots: 1 });
  await using alice = await WsPeer.open(b.url, 3000, bearerInit(b.secrets.alice));
  await alice.register({ type: "producer", protocol: 2 });
  alice.send(request(3, { id: "v-9" }));
  assert.equal((await s1.next(isJob)).id, "alice/v-9"); // a scheduler sees bus-wide ids
  s1.send({ cmd: "event", id: "alice/v-9", state: "started" });
  await alice.next(event("v-9", "started"));
  await using rogue = await WsPeer.open(b.url, 3000, bearerInit(b.secrets.rogue));
  const registered = await rogue.register({
    type: "scheduler",
    protocol: 2,
    name: "S1",
    slots: 1000,
    running: ["alice/v-9"],
  });
  assert.equal(registered?.name, "rogue");
  assert.equal(registered?.warning, undefined);
  assert.deepEqual(await rogue.next((m) => m.cmd === "cancel"), {
    cmd: "cancel",
    id: "alice/v-9",
    reason: "reassigned",
  });
  s1.send({ cmd: "list" }); // a round trip: a cancel sent to S1 would have come before its answer
  assert.equal((await s1.next()).cmd, "error");
  assert.ok(!s1.all().some((m) => m.cmd === "cancel"), "S1 was told to cancel nothing");
  const at = b.bus.status().schedulers.find((s) => s.running.some((j) => j.id === "alice/v-9"));
  assert.equal(at?.name, "S1");
});

Deno.test("BusServer --auth: /status needs a monitor or admin token, /health stays open", async () => {
  await using b = await startAuthed({ alice: "producer", watcher: "monitor", root: "admin" });
  const status = async (secret?: string): Promise<[number, unknown]> => {
    const headers: Record<string, string> = secret ? { authorization: `Bearer ${secret}` } : {};
    const response = await fetch(`${b.http}/status`, { headers });
    return [response.status, await response.json()];
  };
  assert.deepEqual(await status(), [401, { error: "missing token" }]);
  assert.deepEqual(await status(b.secrets.alice), [
    401,
    { error: "needs a monitor or admin token, got producer" },
  ]);
  assert.equal((await status(b.secrets.watcher))[0], 200);
  assert.equal((await status(b.secrets.root))[0], 200);
  const health = await fetch(`${b.http}/health`);
  assert.equal(health.status, 200);
  assert.equal((await health.json()).status, "ok");
});

Deno.test("BusServer --auth: seed clients only with allowSeedClients, then protocol 1 only", async () => {
  {
    await using b = await startAuthed({ alice: "producer" });
    assert.equal((await upgradeAnswer(b.port)).status, 401);
  }
  await using b = await startAuthed({ alice: "producer" }, { allowSeedClients: true });
  await using scheduler = await WsPeer.open(b.url);
  await scheduler.register({ type: "scheduler" });
  await using producer = await WsPeer.open(b.url);
  await producer.register({ type: "producer", name: "alice" });
  producer.send({ cmd: "job_request", payload: { priority: 3, runtime: 2 } });
  assert.deepEqual(await scheduler.next(), { priority: 3, runtime: 2 });
  await using v2 = await WsPeer.open(b.url);
  v2.send({ cmd: "register", type: "producer", protocol: 2, name: "alice" });
  assert.deepEqual(await v2.next(), {
    cmd: "error",
    op: "register",
    reason: "a connection without a token may register only with protocol 1 (a seed client)",
  });
  // A wrong token is still refused: only no token at all is a seed client.
  assert.equal((await upgradeAnswer(b.port, { authorization: "Bearer sched_x" })).status, 401);
});

Deno.test("BusServer --auth: random tokens and roles get exactly what their token allows", async () => {
  const roles: TokenRole[] = ["producer", "scheduler", "monitor", "admin"];
  const types = ["producer", "scheduler", "monitor"] as const;
  const rand = mulberry32(10);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const tokens: Record<string, TokenRole> = {};
  for (let i = 0; i < 8; i++) tokens[`t${i}`] = pick(roles);
  await using b = await startAuthed(tokens);
  let failures = 0; // kept under the 10 that would get the address 429
  for (let i = 0; i < 40; i++) {
    const kind = rand();
    if (kind < 0.25 && ++failures < 10) { // a wrong token: refused before the upgrade
      const secret = kind < 0.1 ? "" : `sched_${Math.floor(rand() * 1e9)}`;
      const answer = await upgradeAnswer(
        b.port,
        secret ? { authorization: `Bearer ${secret}` } : {},
      );
      assert.equal(answer.status, 401, `attempt ${i}`);
      continue;
    }
    const name = pick(Object.keys(tokens));
    const role = tokens[name]!;
    const type = pick(types);
    await using peer = await WsPeer.open(b.url, 3000, bearerInit(b.secrets[name]));
    peer.send({ cmd: "register", type, protocol: 2, name: pick(["x", "t0", "S1"]), slots: 1 });
    const answer = await peer.next();
    if (role === "admin" || role === type) {
      assert.deepEqual([answer.cmd, answer.type, answer.name], ["registered", type, name]);
    } else {
      assert.equal(
        answer.reason,
        `token ${name} (${role}) may not register as ${type}: ` +
          `not allowed for role ${role}`,
      );
    }
  }
});

// --- Safe defaults, TLS and limits (issue 10) ---

/** A raw HTTP/1.1 upgrade request on its own TCP (or TLS) connection, for headers a WebSocket cannot set. */
class RawUpgrade {
  private constructor(
    readonly conn: Deno.Conn | Deno.TlsConn,
    readonly status: number,
    readonly head: string,
  ) {}

  static async open(
    connect: () => Promise<Deno.Conn | Deno.TlsConn>,
    host: string,
    path = "/",
    headers: Record<string, string> = {},
  ): Promise<RawUpgrade> {
    const conn = await connect();
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await writeAll(
      conn,
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
      ),
    );
    const buffer = new Uint8Array(4096);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      head += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return new RawUpgrade(conn, Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head);
  }

  /** Sends one masked frame (text unless `opcode` says otherwise) of any length. */
  async send(payload: Uint8Array | object, opcode = 0x1): Promise<void> {
    const bytes = payload instanceof Uint8Array
      ? payload
      : new TextEncoder().encode(JSON.stringify(payload));
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const length = bytes.length < 126
      ? [bytes.length]
      : [126, bytes.length >> 8, bytes.length & 255];
    const header = [0x80 | opcode, 0x80 | length[0]!, ...length.slice(1), ...mask];
    const frame = new Uint8Array(header.length + bytes.length);
    frame.set(header);
    bytes.forEach((byte, i) => frame[header.length + i] = byte ^ mask[i % 4]!);
    await writeAll(this.conn, frame);
  }

  /** Reads until the server ends the connection; resolves with the bytes read (after the head). */
  async readToEnd(): Promise<number> {
    const buffer = new Uint8Array(1 << 16);
    let total = 0;
    for (;;) {
      const n = await this.conn.read(buffer).catch(() => null); // a reset ends it too
      if (n === null) return total;
      total += n;
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

async function writeAll(conn: Deno.Conn | Deno.TlsConn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
}

const tcp = (port: number) => (): Promise<Deno.Conn> =>
  Deno.connect({ hostname: "127.0.0.1", port });

/** Waits until `ok()` holds, polling; fails after `ms`. */
async function until(ok: () => boolean, what: string, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !ok();) {
    assert.ok(Date.now() < end, `timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("BusServer refuses an upgrade from a foreign Origin with 403, takes its own and none", async () => {
  const { bus, url, http } = start();
  await using _bus = bus;
  const port = Number(new URL(http).port);
  const host = `127.0.0.1:${port}`;
  const foreign = await RawUpgrade.open(tcp(port), host, "/", { Origin: "https://evil.example" });
  foreign.close();
  assert.equal(foreign.status, 403, foreign.head);
  assert.match(foreign.head, /origin https:\/\/evil\.example is not this bus/);
  const own = await RawUpgrade.open(tcp(port), host, "/", { Origin: `http://${host}` });
  assert.equal(own.status, 101, own.head);
  own.close();
  await using none = await WsPeer.open(url); // the built-in WebSocket sends no Origin
  await none.register({ type: "monitor", protocol: 2 });
  assert.equal(bus.health().monitors, 1);
});

Deno.test("BusServer answers an upgrade at /health or /status with 400 and serves /health itself", async () => {
  const { bus, http } = start();
  await using _bus = bus;
  const port = Number(new URL(http).port);
  const upgrade = await RawUpgrade.open(tcp(port), `127.0.0.1:${port}`, "/health");
  upgrade.close();
  assert.equal(upgrade.status, 400, upgrade.head);
  assert.match(upgrade.head, /not an upgrade path/);
  const status = await RawUpgrade.open(tcp(port), `127.0.0.1:${port}`, "/status");
  status.close();
  assert.equal(status.status, 400, status.head);
  assert.equal((await fetch(`${http}/health`).then((r) => r.json())).status, "ok");
});

Deno.test("BusServer answers the upgrade beyond maxConnections with 503, takes one again after a close", async () => {
  const { bus, url, http } = start({ maxConnections: 2 });
  await using _bus = bus;
  const port = Number(new URL(http).port);
  const closed: string[] = [];
  bus.addEventListener("connection", (e) => e.open || closed.push(e.client));
  const a = await WsPeer.open(url);
  await using _b = await WsPeer.open(url);
  const third = await RawUpgrade.open(tcp(port), `127.0.0.1:${port}`);
  third.close();
  assert.equal(third.status, 503, third.head);
  assert.match(third.head, /\{"error":"too many connections"\}/);
  await a.close();
  await until(() => closed.length === 1, "the first connection is gone");
  await using again = await WsPeer.open(url);
  await again.register({ type: "monitor", protocol: 2 });
});

Deno.test("BusServer closes a WebSocket that does not register in time with 1008", async () => {
  const clock = new FakeClock();
  const { bus, url } = start({ clock, registerTimeoutMs: 1000 });
  await using _bus = bus;
  await using quiet = await WsPeer.open(url);
  await using registered = await WsPeer.open(url);
  await registered.register({ type: "producer", protocol: 2, name: "ann" });
  await clock.tick(999);
  assert.equal(quiet.socket.readyState, WebSocket.OPEN);
  await clock.tick(1);
  const close = await withTimeout(quiet.closed, 3000, "the 1008 close");
  assert.equal(close.code, 1008);
  assert.equal(close.reason, "no register within 1 s");
  await clock.tick(60_000);
  assert.equal(registered.socket.readyState, WebSocket.OPEN);
  registered.send({ cmd: "list" });
  assert.equal((await registered.next()).cmd, "jobs");
});

Deno.test("BusServer's rate limit: one error a second, excess dropped, a job_request over it rejected", async () => {
  const clock = new FakeClock();
  const { bus, url } = start({ clock, maxRate: 2 }); // bursts of 4
  await using _bus = bus;
  await using ann = await WsPeer.open(url);
  await ann.register({ type: "producer", protocol: 2, name: "ann" }); // 1 token
  const answer = (m: Message): boolean => m.cmd !== "event";
  for (const id of ["a", "b", "c"]) ann.send(request(3, { id }));
  for (const id of ["a", "b", "c"]) assert.equal((await ann.next(answer)).id, id);
  ann.send(request(3, { id: "d" }));
  assert.deepEqual(await ann.next(answer), { cmd: "rejected", id: "d", reason: "rate limit" });
  ann.send({ cmd: "list" }); // dropped: the report of this second went to "d"
  ann.send(request(3, { id: "e" }));
  assert.deepEqual(await ann.next(answer), { cmd: "rejected", id: "e", reason: "rate limit" });
  await clock.tick(1000); // 2 tokens back
  ann.send({ cmd: "list" });
  assert.equal((await ann.next(answer)).cmd, "jobs");
  ann.send({ cmd: "list" });
  assert.equal((await ann.next(answer)).cmd, "jobs");
  ann.send({ cmd: "list" }); // over: the error of this second
  assert.deepEqual(await ann.next(answer), {
    cmd: "error",
    op: "list",
    reason: "rate limit: 2 messages/s",
  });
  ann.send({ cmd: "list" }); // dropped silently
  ann.send(request(3, { id: "f" }));
  assert.deepEqual(await ann.next(answer), { cmd: "rejected", id: "f", reason: "rate limit" });
  const errors = ann.all().filter((m) => m.cmd === "error");
  assert.equal(errors.length, 1);
});

Deno.test("BusServer rejects a job beyond maxQueuePerOwner, other owners unaffected", async () => {
  const { bus, url } = start({ maxQueuePerOwner: 2 });
  await using _bus = bus;
  await using ann = await WsPeer.open(url);
  await using bob = await WsPeer.open(url);
  await ann.register({ type: "producer", protocol: 2, name: "ann" });
  await bob.register({ type: "producer", protocol: 2, name: "bob" });
  for (const id of ["a1", "a2"]) ann.send(request(3, { id }));
  for (const id of ["a1", "a2"]) assert.equal((await ann.next((m) => m.id === id)).cmd, "accepted");
  ann.send(request(3, { id: "a3" }));
  assert.deepEqual(await ann.next((m) => m.id === "a3"), {
    cmd: "rejected",
    id: "a3",
    reason: "queue full for owner ann",
  });
  bob.send(request(3, { id: "b1" }));
  assert.equal((await bob.next((m) => m.id === "b1")).cmd, "accepted");
  ann.send({ cmd: "cancel", id: "a1" });
  await ann.next((m) => m.cmd === "ack");
  ann.send(request(3, { id: "a3" })); // a finished job frees its place
  assert.equal((await ann.next((m) => m.id === "a3" && m.cmd !== "event")).cmd, "accepted");
});

Deno.test("BusServer ends the TCP connection of a peer it closes with 1008 for not reading", async () => {
  // Its send buffer overflows only once the kernel's buffers are full too: the close frame
  // cannot go out, and the close handshake cannot complete.
  const { bus, url, http } = start({
    maxFrameBytes: 1 << 20,
    maxBufferedBytes: 4 << 20,
    pingTimeoutMs: 0,
  });
  await using _bus = bus;
  const port = Number(new URL(http).port);
  const closes = new Map<string, number>();
  bus.addEventListener("connection", (e) => e.open || closes.set(e.client, e.detail.code ?? 0));
  let closing = false;
  bus.addEventListener("notice", (e) => {
    closing ||= /closing: send buffer overflow/.test(e.message);
  });
  await using ann = await WsPeer.open(url);
  await ann.register({ type: "producer", protocol: 2, name: "ann" });
  const blob = "x".repeat(500_000);
  ann.send({ cmd: "job_request", id: "big", payload: { priority: 3, runtime: 1, blob } });
  await ann.next((m) => m.cmd === "accepted");
  const silent = await RawUpgrade.open(tcp(port), `127.0.0.1:${port}`);
  try {
    await silent.send({ cmd: "register", type: "monitor", protocol: 2 });
    await until(() => bus.health().monitors === 1, "the silent monitor registered");
    // Each show is answered with the half-megabyte job; it never reads them.
    for (let i = 0; !closing; i++) {
      assert.ok(i < 2000, "the bus never gave up on the peer");
      await silent.send({ cmd: "show", id: "big" }).catch(() => {});
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
    }
    // Its TCP connection has ended: reading what is in flight reaches the end.
    await withTimeout(silent.readToEnd(), 10_000, "the end of the TCP connection");
    await until(() => closes.size === 1, "the bus saw the connection end");
  } finally {
    silent.close();
  }
});

Deno.test("BusServer ends the TCP connection of a peer that never answers its 1008 close", async () => {
  const { bus, http } = start({ registerTimeoutMs: 100, pingTimeoutMs: 0 });
  await using _bus = bus;
  const port = Number(new URL(http).port);
  const closes: (number | undefined)[] = [];
  bus.addEventListener("connection", (e) => e.open || closes.push(e.detail.code));
  const raw = await RawUpgrade.open(tcp(port), `127.0.0.1:${port}`); // never registers
  try {
    // The close frame arrives, the peer never answers it: the bus drops the connection.
    const started = Date.now();
    await withTimeout(raw.readToEnd(), 10_000, "the end of the TCP connection");
    assert.ok(Date.now() - started < 5000);
    await until(() => closes.length === 1, "the bus saw the connection end");
  } finally {
    raw.close();
  }
});

Deno.test("BusServer drops a connection that sends invalid UTF-8 in a text frame, and says so", async () => {
  const { bus, url, http } = start();
  await using _bus = bus;
  const notices: string[] = [];
  bus.addEventListener("notice", (e) => notices.push(e.message));
  const port = Number(new URL(http).port);
  const raw = await RawUpgrade.open(tcp(port), `127.0.0.1:${port}`);
  try {
    await raw.send(new Uint8Array([0x7b, 0xff, 0x7d]));
    await withTimeout(raw.readToEnd(), 5000, "the end of the connection");
  } finally {
    raw.close();
  }
  await until(() => notices.some((n) => /UTF-8/.test(n)), "a notice about the bad UTF-8");
  await using other = await WsPeer.open(url); // the bus serves on
  await other.register({ type: "monitor", protocol: 2 });
});

Deno.test("BusServer with cert and key serves wss:// and https:// (a throwaway CA)", async (t) => {
  const tls = await throwawayTls();
  if (typeof tls === "string") {
    // deno-lint-ignore no-console
    console.warn(`skipped: cannot make a test certificate: ${tls}`);
    return;
  }
  try {
    const bus = new BusServer({ port: 0, cert: tls.cert, key: tls.key });
    await using _bus = bus;
    const { port } = bus.listen();
    await t.step("https://127.0.0.1/health", async () => {
      using client = Deno.createHttpClient({ caCerts: [tls.ca] });
      const health = await fetch(`https://127.0.0.1:${port}/health`, { client });
      assert.equal((await health.json()).status, "ok");
    });
    await t.step("wss:// upgrade, register, and a foreign Origin refused", async () => {
      const connect = () => Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [tls.ca] });
      const host = `127.0.0.1:${port}`;
      const own = await RawUpgrade.open(connect, host, "/", { Origin: `https://${host}` });
      try {
        assert.equal(own.status, 101, own.head);
        await own.send({ cmd: "register", type: "monitor", protocol: 2 });
        await until(() => bus.health().monitors === 1, "the monitor registered over TLS");
      } finally {
        own.close();
      }
      const foreign = await RawUpgrade.open(connect, host, "/", { Origin: `http://${host}` });
      foreign.close();
      assert.equal(foreign.status, 403, foreign.head);
    });
    assert.throws(() => new BusServer({ cert: tls.cert }), /'cert' and 'key' go together/);
  } finally {
    await tls.remove();
  }
});

Deno.test("BusServer refuses limits that are not positive", () => {
  assert.throws(() => new BusServer({ maxQueuePerOwner: 0 }), /'maxQueuePerOwner' must be/);
  assert.throws(() => new BusServer({ maxConnections: 0 }), /'maxConnections' must be/);
  assert.throws(() => new BusServer({ registerTimeoutMs: -1 }), /'registerTimeoutMs' must be/);
  assert.throws(() => new BusServer({ maxRate: 0 }), /'maxRate' must be/);
  assert.throws(() => new BusServer({ key: "x" }), /'cert' and 'key' go together/);
});
