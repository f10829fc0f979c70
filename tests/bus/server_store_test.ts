/**
 * The bus with its store (issue 11): accepted means committed, a failing store rejects new jobs
 * and recovers, idempotency and history across a restart, events resumed from a seq, `resync`,
 * `reported` acks, and a slow reader that gets every event.
 */
import assert from "node:assert/strict";
import { BusServer, type BusServerOptions } from "../../bus/server.ts";
import { SqliteStore } from "../../bus/sqlite_store.ts";
import { type Message, WsPeer } from "../fixtures/raw_ws.ts";

function start(options: BusServerOptions = {}): { bus: BusServer; url: string; http: string } {
  const bus = new BusServer({ port: 0, ...options });
  const { port } = bus.listen();
  return { bus, url: `ws://127.0.0.1:${port}/`, http: `http://127.0.0.1:${port}` };
}

const job = (id: string, priority = 5): Message => ({
  cmd: "job_request",
  id,
  payload: { priority, runtime: 1 },
});
const isEvent = (id: string, state: string) => (m: Message): boolean =>
  m.cmd === "event" && m.id === id && m.state === state;

async function producer(url: string, name: string, extra: Message = {}): Promise<WsPeer> {
  const peer = await WsPeer.open(url);
  await peer.register({ type: "producer", protocol: 2, name, ...extra });
  return peer;
}

async function scheduler(url: string, name: string, extra: Message = {}): Promise<WsPeer> {
  const peer = await WsPeer.open(url);
  await peer.register({ type: "scheduler", protocol: 2, name, slots: 1, ...extra });
  return peer;
}

Deno.test("bus store: a failing commit answers rejected 'store unavailable', the bus keeps serving and recovers", async () => {
  let failing = false;
  const store = new SqliteStore({
    path: ":memory:",
    faults: {
      beforeCommit: () => {
        if (failing) throw new Error("database or disk is full");
      },
    },
  });
  const { bus, url, http } = start({ store });
  try {
    await using ann = await producer(url, "ann");
    ann.send(job("j1"));
    assert.equal((await ann.next((m) => m.id === "j1")).cmd, "accepted");
    failing = true;
    ann.send(job("j2"));
    const refused = await ann.next((m) => m.id === "j2");
    assert.equal(refused.cmd, "rejected");
    assert.match(String(refused.reason), /^store unavailable: .*disk is full/);
    const health = await fetch(`${http}/health`).then((r) => r.json());
    assert.equal(health.store.available, false);
    ann.send({ cmd: "list" }); // still serving
    const list = await ann.next((m) => m.cmd === "jobs");
    assert.deepEqual((list.jobs as Message[]).map((j) => j.id), ["j1"]); // j2 is nowhere
    failing = false;
    ann.send(job("j2"));
    assert.equal((await ann.next((m) => m.id === "j2")).cmd, "accepted");
    assert.equal((await fetch(`${http}/health`).then((r) => r.json())).store.available, true);
  } finally {
    await bus.close();
    store.close();
  }
});

Deno.test("bus store: a finished job is known across a restart (duplicate answer, show, history)", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/bus.sqlite`;
  try {
    let store = new SqliteStore({ path });
    let { bus, url } = start({ store });
    {
      await using ann = await producer(url, "ann");
      await using s1 = await scheduler(url, "s1");
      ann.send(job("j1"));
      await s1.next((m) => m.cmd === "job" && m.id === "j1");
      s1.send({ cmd: "event", id: "j1", state: "started" });
      s1.send({ cmd: "event", id: "j1", state: "succeeded", result: { exitCode: 0 } });
      await ann.next(isEvent("j1", "succeeded"));
      assert.deepEqual((await s1.next((m) => m.cmd === "reported")).ids, ["j1"]);
    }
    await bus.close();
    store.close();
    store = new SqliteStore({ path });
    ({ bus, url } = start({ store }));
    await using ann = await producer(url, "ann");
    ann.send(job("j1"));
    const answer = await ann.next((m) => m.cmd === "accepted");
    assert.equal(answer.duplicate, true);
    assert.equal(answer.state, "succeeded");
    assert.equal(answer.final, true);
    assert.deepEqual(answer.result, { exitCode: 0 });
    ann.send({ cmd: "show", id: "j1" });
    const info = await ann.next((m) => m.cmd === "job_info");
    const history = (info.job as { history: Message[] }).history.map((h) => h.state);
    assert.deepEqual(history, ["queued", "started", "succeeded"]);
    await bus.close();
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bus store: jobs at a scheduler stay its own across a restart; the rest are requeued", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/bus.sqlite`;
  try {
    let store = new SqliteStore({ path });
    let { bus, url } = start({ store });
    {
      const ann = await producer(url, "ann");
      const s1 = await scheduler(url, "s1");
      const s2 = await scheduler(url, "s2");
      for (const id of ["a", "b", "c"]) ann.send(job(id));
      await s1.next((m) => m.cmd === "job");
      await s2.next((m) => m.cmd === "job");
      await ann.next((m) => m.cmd === "accepted" && m.id === "c");
      await bus.close(); // with the schedulers still connected: their jobs stay theirs
      await Promise.all([ann.close(), s1.close(), s2.close()]);
    }
    store.close();
    store = new SqliteStore({ path });
    ({ bus, url } = start({ store, recoverGraceMs: 60_000 }));
    assert.equal(bus.status().queue.length, 1); // c waits; a and b are at s1 and s2
    assert.deepEqual(bus.status().recovering, { s1: 1, s2: 1 });
    assert.deepEqual(bus.status().queue.jobs.map((j) => j.id), ["c"]);
    const atS1 = bus.store.list({}).jobs.find((j) => j.scheduler === "s1")!.id;
    const atS2 = bus.store.list({}).jobs.find((j) => j.scheduler === "s2")!.id;
    await using s3 = await scheduler(url, "s3");
    assert.equal((await s3.next((m) => m.cmd === "job")).id, "c"); // never a nor b
    await using s1 = await scheduler(url, "s1", { running: [atS1] }); // still runs its job
    await using s2 = await scheduler(url, "s2"); // came back without it: requeued
    assert.deepEqual(bus.status().recovering, {});
    s3.send({ cmd: "event", id: "c", state: "succeeded" });
    const again = await Promise.race([
      s2.next((m) => m.cmd === "job"),
      s3.next((m) => m.cmd === "job"),
    ]);
    assert.equal(again.id, atS2);
    s1.send({ cmd: "event", id: atS1, state: "succeeded" });
    assert.deepEqual((await s1.next((m) => m.cmd === "reported")).ids, [atS1]);
    assert.equal(s1.all().filter((m) => m.cmd === "job" || m.cmd === "cancel").length, 0);
    await bus.close();
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bus store: jobs whose scheduler does not come back are requeued after the grace", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/bus.sqlite`;
  try {
    let store = new SqliteStore({ path });
    let { bus, url } = start({ store });
    {
      const ann = await producer(url, "ann");
      const s1 = await scheduler(url, "s1");
      ann.send(job("a"));
      await s1.next((m) => m.cmd === "job");
      await bus.close(); // with s1 still connected: a stays s1's
      await Promise.all([ann.close(), s1.close()]);
    }
    store.close();
    store = new SqliteStore({ path });
    ({ bus, url } = start({ store, recoverGraceMs: 100 }));
    await using ann = await producer(url, "ann", { after: 0 });
    await using s2 = await scheduler(url, "s2");
    assert.equal((await s2.next((m) => m.cmd === "job", 5000)).id, "a");
    const requeued = await ann.next(isEvent("a", "requeued"));
    assert.match(String(requeued.reason), /did not come back/);
    await bus.close();
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bus store: a producer resumes events after a seq; resync when they are gone", async () => {
  const store = new SqliteStore({ path: ":memory:", keepFinished: { count: 1 } });
  const { bus, url } = start({ store });
  try {
    await using s1 = await scheduler(url, "s1");
    let seen = 0;
    {
      await using ann = await producer(url, "ann");
      ann.send(job("a"));
      const queued = await ann.next(isEvent("a", "queued"));
      seen = queued.seq as number;
      assert.ok(seen > 0);
    }
    await s1.next((m) => m.cmd === "job" && m.id === "a");
    s1.send({ cmd: "event", id: "a", state: "started" });
    s1.send({ cmd: "event", id: "a", state: "succeeded" });
    await s1.next((m) => m.cmd === "reported");
    await using back = await producer(url, "ann", { after: seen });
    const started = await back.next(isEvent("a", "started"));
    const ended = await back.next(isEvent("a", "succeeded"));
    assert.ok((started.seq as number) > seen && (ended.seq as number) > (started.seq as number));
    assert.equal(back.all().filter((m) => m.cmd === "event" && m.state === "queued").length, 0);
    // Two more finished jobs: a is pruned (only 1 finished job kept), its events with it.
    for (const id of ["b", "c"]) {
      back.send(job(id));
      await s1.next((m) => m.cmd === "job" && m.id === id);
      s1.send({ cmd: "event", id, state: "succeeded" });
      await back.next(isEvent(id, "succeeded"));
    }
    assert.ok(bus.store.prune(Date.now()) >= 1);
    await using late = await producer(url, "ann", { after: seen });
    const resync = await late.next((m) => m.cmd === "resync");
    assert.match(String(resync.reason), /no longer kept/);
  } finally {
    await bus.close();
    store.close();
  }
});

Deno.test("bus store: a reader over its send buffer misses no event: it gets them from the store", async () => {
  const { bus, url } = start({ maxBufferedBytes: 16_384 });
  await using _bus = bus;
  await using mon = await WsPeer.open(url);
  await mon.register({ type: "monitor", protocol: 2, name: "m" });
  await using ann = await producer(url, "ann");
  const n = 1000;
  for (let i = 0; i < n; i++) ann.send(job(`j${i}`));
  await ann.next((m) => m.cmd === "accepted" && m.id === `j${n - 1}`);
  const last = await mon.next(isEvent(`j${n - 1}`, "queued"), 10_000);
  const seqs = mon.all().filter((m) => m.cmd === "event").map((m) => m.seq as number);
  assert.equal(seqs.length, n);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b)); // in order, each once
  assert.equal(new Set(seqs).size, n);
  assert.equal(last.seq, seqs.at(-1));
});
