import assert from "node:assert/strict";
import { Producer, type ProducerJobEvent } from "../../producer/producer.ts";
import { ProducerStateError } from "../../producer/errors.ts";
import { FakeClock } from "../fake_clock.ts";
import { answerRegister, FakeBus, type Message } from "../fixtures/fake_bus.ts";

const FAST = { initialMs: 10, maxMs: 50 };

/** Collects `change id` strings of a producer's job events. */
function changes(producer: Producer): string[] {
  const seen: string[] = [];
  producer.addEventListener("job", (event: ProducerJobEvent) => {
    seen.push(`${event.change} ${event.job.id}`);
  });
  return seen;
}

/** Resolves once `predicate()` holds, checking after each job event. */
function until(producer: Producer, predicate: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (!predicate()) return;
      producer.removeEventListener("job", check);
      resolve();
    };
    producer.addEventListener("job", check);
    check();
  });
}

/** Accepts every job_request. */
function accepting(message: Message, reply: (message: object) => void): void {
  answerRegister(message, reply);
  if (message.cmd === "job_request") reply({ cmd: "accepted", id: message.id });
}

Deno.test("Producer registers with protocol 2 and its name, and sends ids <name>-<n>", async () => {
  await using bus = new FakeBus({ answer: accepting });
  await using producer = new Producer(bus.url, { name: "p1" });
  const seen = changes(producer);
  producer.start();
  const job = producer.submit({ priority: 3, runtime: 5 });
  assert.equal(job.id, "p1-1");
  assert.equal(job.sends, 0, "held: not registered yet");
  await producer.onAnswered();
  assert.deepEqual(bus.received, [
    { cmd: "register", type: "producer", protocol: 2, name: "p1" },
    { cmd: "job_request", id: "p1-1", payload: { priority: 3, runtime: 5 } },
  ]);
  assert.deepEqual(seen, ["sent p1-1", "accepted p1-1"]);
  assert.equal(producer.unanswered, 0);
  assert.equal(producer.unfinished, 1);
});

Deno.test("Producer re-sends its unfinished jobs after the bus restarts", async () => {
  // The first bus never answers job requests: the jobs are sent but not accepted.
  let bus = new FakeBus();
  const port = bus.port;
  const producer = new Producer(bus.url, { name: "p", backoff: FAST });
  try {
    const seen = changes(producer);
    producer.start();
    producer.submit({ priority: 1, runtime: 3 });
    await until(producer, () => seen.includes("sent p-1"));
    producer.submit({ priority: 2, runtime: 4 });
    await until(producer, () => seen.includes("sent p-2"));
    assert.equal(producer.unanswered, 2);
    await bus.close();
    producer.submit({ priority: 0, runtime: 5 }); // while the bus is down: held
    bus = new FakeBus({ port, answer: accepting });
    await producer.onAnswered();
    const requests = bus.received.filter((m) => m.cmd === "job_request").map((m) => m.id);
    assert.deepEqual(requests, ["p-1", "p-2", "p-3"], "re-sent in submission order");
    assert.deepEqual(seen.slice(2), [
      "resent p-1",
      "resent p-2",
      "sent p-3",
      "accepted p-1",
      "accepted p-2",
      "accepted p-3",
    ]);
  } finally {
    await producer.close();
    await bus.close();
  }
});

Deno.test("Producer follows events to an outcome and sums up wait and run by priority", async () => {
  const clock = new FakeClock();
  await using bus = new FakeBus({ answer: accepting });
  await using producer = new Producer(bus.url, { name: "p", clock });
  const seen = changes(producer);
  producer.start();
  producer.submit({ priority: 2, runtime: 3 });
  producer.submit({ priority: 2, runtime: 3 });
  producer.submit({ priority: 7, runtime: 3 });
  await producer.onAnswered();
  const event = (id: string, state: string, extra = {}): void =>
    bus.broadcast({ cmd: "event", id, state, at: clock.now(), priority: 2, ...extra });
  const settled = producer.onSettled();
  await clock.tick(1000);
  event("p-1", "started", { scheduler: "node-a" });
  event("p-2", "queued");
  await until(producer, () => seen.includes("queued p-2"));
  await clock.tick(3000);
  event("p-2", "started", { scheduler: "node-b" });
  event("p-1", "succeeded", { scheduler: "node-a", result: { code: 0 } });
  await until(producer, () => seen.includes("succeeded p-1"));
  await clock.tick(1000);
  event("p-2", "evicted", { reason: "preempted" });
  event("p-2", "requeued");
  event("p-2", "started", { scheduler: "node-a" });
  bus.broadcast({ cmd: "rejected", id: "p-3", reason: "queue full" });
  await until(producer, () => seen.includes("started p-2") && producer.unfinished === 1);
  await clock.tick(2000);
  event("p-2", "timed_out", { scheduler: "node-a" });
  await settled;
  assert.deepEqual(seen.slice(6), [
    "started p-1",
    "queued p-2",
    "started p-2",
    "succeeded p-1",
    "evicted p-2",
    "requeued p-2",
    "started p-2",
    "rejected p-3",
    "timed_out p-2",
  ]);
  const summary = producer.summary;
  assert.deepEqual(summary.outcomes, { succeeded: 1, rejected: 1, timed_out: 1 });
  assert.deepEqual(summary.byPriority, [
    // p-1: waited 1 s, ran 3 s; p-2: first started at 4 s, last start at 5 s, ended at 7 s
    { priority: 2, finished: 2, started: 2, meanWaitMs: 2500, meanRunMs: 2500 },
    { priority: 7, finished: 1, started: 0, meanWaitMs: 0, meanRunMs: 0 },
  ]);
  assert.equal(summary.produced, 3);
  assert.equal(summary.finished, 3);
});

Deno.test("Producer settles a job evicted for good, and learns states from duplicates", async () => {
  await using bus = new FakeBus({ answer: accepting });
  await using producer = new Producer(bus.url, { name: "p" });
  const seen = changes(producer);
  producer.start();
  producer.submit({ priority: 4, runtime: 6 });
  producer.submit({ priority: 4, runtime: 6 });
  await producer.onAnswered();
  const event = { cmd: "event", at: 0, priority: 4, scheduler: "n" };
  bus.broadcast({ ...event, id: "p-1", state: "evicted", reason: "preempted" }); // requeued next
  bus.broadcast({ ...event, id: "p-1", state: "evicted", reason: "killed", final: true });
  bus.broadcast({ cmd: "accepted", id: "p-2", duplicate: true, state: "started", scheduler: "m" });
  await until(producer, () => seen.includes("duplicate p-2") && producer.unfinished === 1);
  assert.deepEqual(seen.slice(4), ["evicted p-1", "evicted p-1", "duplicate p-2"]);
  assert.deepEqual(producer.summary.outcomes, { evicted: 1 });
  const settled = producer.onSettled();
  bus.broadcast({
    cmd: "accepted",
    id: "p-2",
    duplicate: true,
    state: "timed_out",
    final: true,
    scheduler: "m",
    reason: "over 10 s",
  });
  await settled;
  assert.deepEqual(producer.summary.outcomes, { evicted: 1, timed_out: 1 });
  assert.deepEqual(seen.slice(7), ["duplicate p-2", "timed_out p-2"]);
});

Deno.test("Producer with protocol 1 speaks like the seed: no id, done once sent", async () => {
  await using bus = new FakeBus({ answer: () => {} });
  await using producer = new Producer(bus.url, { protocol: 1 });
  producer.start();
  producer.submit({ priority: 4, runtime: 6 });
  await producer.onSettled();
  assert.deepEqual(producer.summary.outcomes, { sent: 1 });
  for (let i = 0; i < 200 && bus.received.length < 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.deepEqual(bus.received, [
    { cmd: "register", type: "producer" },
    { cmd: "job_request", payload: { priority: 4, runtime: 6 } },
  ]);
});

Deno.test("Producer reports the bus's error answers", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      if (message.cmd === "job_request") reply({ cmd: "error", reason: "queue full" });
    },
  });
  await using producer = new Producer(bus.url, { protocol: 1 });
  const error = new Promise<string>((resolve) =>
    producer.addEventListener("buserror", (event) => resolve(String(event.message.reason)))
  );
  producer.start();
  producer.submit({ priority: 4, runtime: 6 });
  assert.equal(await error, "queue full");
});

Deno.test("Producer.close() resolves pending waits and refuses new jobs", async () => {
  const producer = new Producer("ws://127.0.0.1:9", { backoff: FAST });
  producer.start();
  producer.submit({ priority: 1, runtime: 1 });
  const settled = producer.onSettled();
  await producer.close();
  await settled;
  assert.equal(producer.unfinished, 1);
  assert.throws(() => producer.submit({ priority: 1, runtime: 1 }), ProducerStateError);
});

Deno.test("Producer tells which accepted jobs wait because no scheduler is connected", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd !== "job_request") return;
      reply({ cmd: "accepted", id: message.id, waiting: "no scheduler connected" });
    },
  });
  await using producer = new Producer(bus.url, { name: "w" });
  const waiting: (string | undefined)[] = [];
  producer.addEventListener("job", ({ change, job }) => {
    if (change === "accepted" || change === "started") waiting.push(job.waiting);
  });
  producer.start();
  producer.submit({ priority: 2, runtime: 1 });
  await producer.onAnswered();
  const started = until(producer, () => waiting.length === 2);
  bus.broadcast({ cmd: "event", id: "w-1", state: "started", at: 0, priority: 2 });
  await started;
  assert.deepEqual(waiting, ["no scheduler connected", undefined]);
});

/** A v2 `registered` answer carrying the bus's latest event seq. */
function registered(seq: number): object {
  return { cmd: "registered", type: "producer", protocol: 2, client: "c1", name: "p", seq };
}

/** A job event with its seq. */
function event(id: string, state: string, seq: number, final = false): object {
  return { cmd: "event", id, state, at: 0, priority: 1, seq, ...(final ? { final: true } : {}) };
}

Deno.test("Producer registers again with after = the last event seq seen; replayed events do not count twice", async () => {
  let connections = 0;
  await using bus = new FakeBus({
    answer: (message, reply) => {
      if (message.cmd === "register") {
        connections++;
        reply(registered(connections === 1 ? 100 : 105));
        if (connections === 2) { // replays from 101: what the producer had (<= 103) is ignored
          reply(event("p-1", "started", 101));
          reply(event("p-1", "succeeded", 102, true));
          reply(event("p-2", "started", 103));
          reply(event("p-2", "succeeded", 104, true));
        }
        return;
      }
      if (message.cmd !== "job_request") return;
      if (connections === 1) return reply({ cmd: "accepted", id: message.id });
      reply({ cmd: "accepted", id: message.id, duplicate: true, state: "succeeded", final: true });
    },
  });
  await using producer = new Producer(bus.url, { name: "p", backoff: FAST });
  const seen = changes(producer);
  producer.start();
  producer.submit({ priority: 1, runtime: 1 });
  producer.submit({ priority: 1, runtime: 1 });
  await producer.onAnswered();
  bus.broadcast(event("p-1", "started", 101));
  bus.broadcast(event("p-1", "succeeded", 102, true));
  bus.broadcast(event("p-2", "started", 103));
  await until(producer, () => seen.includes("started p-2"));
  for (const socket of bus.sockets) socket.close(1011, "gone");
  await producer.onSettled();
  assert.deepEqual(seen.slice(4), [
    "started p-1",
    "succeeded p-1",
    "started p-2",
    "resent p-2",
    "succeeded p-2",
  ]);
  assert.deepEqual(producer.summary.outcomes, { succeeded: 2 });
  const registers = bus.received.filter((m) => m.cmd === "register");
  assert.equal(registers[0]?.after, undefined, "the first registration resumes nothing");
  assert.equal(registers[1]?.after, 103);
});

Deno.test("Producer on resync re-sends its answered unfinished jobs and takes their outcomes", async () => {
  let sends = 0;
  await using bus = new FakeBus({
    answer: (message, reply) => {
      if (message.cmd === "register") return reply(registered(7));
      if (message.cmd !== "job_request") return;
      const { id } = message;
      sends++;
      if (id === "p-3" && sends === 3) { // the bus lost events: it says so, then answers
        reply({ cmd: "resync", reason: "events before seq 20 are no longer kept", seq: 20 });
        reply(event("p-1", "failed", 15, true)); // at or below the resync's seq: ignored
        return reply({ cmd: "accepted", id });
      }
      if (sends <= 2) return reply({ cmd: "accepted", id });
      reply({
        cmd: "accepted",
        id,
        duplicate: true,
        state: id === "p-1" ? "started" : "succeeded",
        final: id === "p-1" ? undefined : true,
      });
      if (id === "p-1") reply(event("p-1", "succeeded", 21, true));
      if (id === "p-2") reply(event("p-3", "succeeded", 22, true));
    },
  });
  await using producer = new Producer(bus.url, { name: "p", backoff: FAST });
  const seen = changes(producer);
  producer.start();
  producer.submit({ priority: 1, runtime: 1 });
  producer.submit({ priority: 1, runtime: 1 });
  await producer.onAnswered();
  producer.submit({ priority: 1, runtime: 1 });
  await producer.onSettled();
  const requests = bus.received.filter((m) => m.cmd === "job_request").map((m) => m.id);
  assert.deepEqual(requests, ["p-1", "p-2", "p-3", "p-1", "p-2"], "p-3's answer was on its way");
  assert.deepEqual(seen.slice(5), [
    "resent p-1",
    "resent p-2",
    "accepted p-3",
    "duplicate p-1",
    "succeeded p-1",
    "duplicate p-2",
    "succeeded p-2",
    "succeeded p-3",
  ]);
  assert.deepEqual(producer.summary.outcomes, { succeeded: 3 });
});
