import assert from "node:assert/strict";
import { BusClient } from "../../bus/client.ts";
import { BusServer } from "../../bus/server.ts";
import { main } from "../../producer/main.ts";
import { JobOpError } from "../../producer/errors.ts";
import { Producer, type ProducerJobEvent } from "../../producer/producer.ts";

/**
 * A scripted protocol-2 scheduler on a {@linkcode BusClient}: every job it is given starts and
 * succeeds at once.
 */
function scriptedScheduler(url: string): BusClient {
  const client = new BusClient(url, {
    register: () => ({ cmd: "register", type: "scheduler", protocol: 2, name: "s1", slots: 2 }),
    backoff: { initialMs: 10, maxMs: 50 },
  });
  client.addEventListener("message", ({ message }) => {
    if (message.cmd !== "job") return;
    client.send({ cmd: "event", id: message.id, state: "started" });
    client.send({ cmd: "event", id: message.id, state: "succeeded", result: { code: 0 } });
  });
  client.start();
  return client;
}

Deno.test("producer main --count 3 --wait runs to completion against the real bus", async () => {
  await using bus = new BusServer({ port: 0, pingTimeoutMs: 0 });
  const url = `ws://127.0.0.1:${bus.listen().port}`;
  await using _scheduler = scriptedScheduler(url);
  const out: string[] = [];
  const code = await main(["--url", url, "--count", "3", "--wait", "-p", "0.01", "--name", "e"], {
    stdout: (line) => out.push(line),
  });
  assert.equal(code, 0);
  const text = out.join("\n");
  for (const id of ["e-1", "e-2", "e-3"]) {
    assert.match(text, new RegExp(`${id} accepted, queued in the bus`));
    assert.match(text, new RegExp(`${id} started on s1`));
    assert.match(text, new RegExp(`${id} succeeded on s1`));
  }
  assert.match(text, /outcomes: succeeded 3$/m);
});

Deno.test("Producer's jobs survive a restart of the real bus (re-sent, run once)", async () => {
  let bus = new BusServer({ port: 0, pingTimeoutMs: 0 });
  const port = bus.listen().port;
  const url = `ws://127.0.0.1:${port}`;
  const producer = new Producer(url, { name: "r", backoff: { initialMs: 10, maxMs: 50 } });
  let scheduler: BusClient | undefined;
  try {
    const seen: string[] = [];
    producer.addEventListener("job", (event: ProducerJobEvent) => {
      seen.push(`${event.change} ${event.job.id}`);
    });
    producer.start();
    producer.submit({ priority: 1, runtime: 1 });
    producer.submit({ priority: 2, runtime: 1 });
    await producer.onAnswered(); // queued in the first bus; no scheduler yet
    await bus.close(); // the queue dies with it
    producer.submit({ priority: 3, runtime: 1 }); // held while the bus is down
    bus = new BusServer({ port, pingTimeoutMs: 0 });
    bus.listen();
    scheduler = scriptedScheduler(url);
    await producer.onSettled();
    assert.deepEqual(producer.summary.outcomes, { succeeded: 3 });
    for (const id of ["r-1", "r-2"]) assert.ok(seen.includes(`resent ${id}`), seen.join(", "));
    assert.equal(seen.filter((s) => s.startsWith("succeeded")).length, 3);
  } finally {
    await producer.close();
    await scheduler?.close();
    await bus.close();
  }
});

Deno.test("Producer.cancel and setPriority on the real bus: ack resolves, refusals reject", async () => {
  await using bus = new BusServer({ port: 0, pingTimeoutMs: 0 });
  const url = `ws://127.0.0.1:${bus.listen().port}`;
  await using producer = new Producer(url, { name: "c", backoff: { initialMs: 10, maxMs: 50 } });
  const started: string[] = [];
  producer.addEventListener("job", ({ change, job }) => {
    if (change === "started") started.push(job.id);
  });
  await assert.rejects(producer.cancel("c-1"), { name: "JobOpError", reason: /not connected/ });
  producer.start();
  for (let i = 0; i < 3; i++) producer.submit({ priority: 5, runtime: 1 });
  await producer.onAnswered(); // all three wait in the bus: no scheduler yet
  await producer.setPriority("c-3", 0);
  assert.equal(producer.summary.produced, 3);
  assert.deepEqual(bus.status().queue.byPriority, { "0": 1, "5": 2 });
  await producer.cancel("c-1");
  const refused = async (op: Promise<void>, reason: RegExp): Promise<void> => {
    const error = await op.then(() => undefined, (e) => e);
    assert.ok(error instanceof JobOpError, String(error));
    assert.match(error.reason, reason);
  };
  await refused(producer.cancel("c-1"), /already cancelled/);
  await refused(producer.cancel("other-1"), /unknown job/);
  assert.throws(() => producer.setPriority("c-2", 11), RangeError);
  await using _scheduler = scriptedScheduler(url);
  await producer.onSettled();
  assert.deepEqual(producer.summary.outcomes, { cancelled: 1, succeeded: 2 });
  assert.deepEqual(started, ["c-3", "c-2"], "the re-prioritised job ran first");
  await refused(producer.setPriority("c-2", 1), /not waiting/);
});
