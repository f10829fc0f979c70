/**
 * End to end: jobs flowing from producers through the bus to schedulers, with the real CLIs as
 * child processes, and clients written against the seed's wire format.
 */

import assert from "node:assert/strict";
import { JobGenerator } from "../../producer/generator.ts";
import { Cli, startBus, until } from "../fixtures/e2e_cli.ts";
import { type Message, WsPeer } from "../fixtures/raw_ws.ts";

/**
 * A seed for `--priority 0-10 --runtime 3` whose first job is not urgent (priority >= 8) and
 * whose second is (<= 2): the producer CLI's sequence, replayed with its generator.
 */
function lowThenUrgentSeed(periodS: number): { seed: number; low: number; urgent: number } {
  for (let seed = 1;; seed++) {
    const generator = new JobGenerator({ seed, priority: [0, 10], runtimeS: [3, 3], periodS });
    const low = generator.nextJob().priority;
    generator.nextDelayMs();
    const urgent = generator.nextJob().priority;
    if (low >= 8 && urgent <= 2) return { seed, low, urgent };
  }
}

Deno.test("e2e: producer → bus → scheduler CLIs: an urgent job evicts, jobs time out", async () => {
  const [bus, url] = await startBus();
  await using _bus = bus;
  await using scheduler = Cli.run("scheduler/main.ts", [
    "--url",
    url,
    "--name",
    "s1",
    "-s",
    "1",
    "-t",
    "1.5",
  ], "scheduler");
  await scheduler.waitFor(/registered: 1 slot, timeout 1.5 s/);
  const { seed, low, urgent } = lowThenUrgentSeed(0.3);
  await using producer = Cli.run("producer/main.ts", [
    "--url",
    url,
    "--name",
    "p",
    "--count",
    "2",
    "--wait",
    "-p",
    "0.3",
    "--seed",
    String(seed),
    "--runtime",
    "3",
  ], "producer");
  // Both jobs time out: --wait exits 1 (some job did not succeed).
  assert.equal(await producer.exitCode(20_000), 1, producer.text);
  // The scheduler's lines tell the story: p-1 runs, p-2 evicts it and times out, p-1 runs
  // again and times out.
  const story = [
    new RegExp(`job p-1 p${low} started \\(runtime 3 s\\)`),
    new RegExp(`job p-1 p${low} evicted, handed back to the bus: evicted by p-2`),
    new RegExp(`job p-2 p${urgent} started`),
    new RegExp(`job p-2 p${urgent} timed out.* after 1\\.\\d s`),
    new RegExp(`job p-1 p${low} started \\(runtime 3 s\\)`),
    new RegExp(`job p-1 p${low} timed out`),
  ];
  let at = 0;
  for (const line of story) {
    at = scheduler.lines.findIndex((text, i) => i >= at && line.test(text));
    assert.ok(at >= 0, `no ${line} in order in:\n${scheduler.text}`);
  }
  // The producer heard the same, and its summary counts two timeouts.
  assert.match(producer.text, /p-1 evicted on s1/);
  assert.match(producer.text, /p-1 requeued/);
  assert.match(producer.text, /p-2 timed_out on s1/);
  assert.match(producer.text, /outcomes: timed_out 2$/m);
});

Deno.test("e2e: seed-format clients: seed schedulers get one job each, round-robin", async () => {
  const [bus, url] = await startBus();
  await using _bus = bus;
  await using a = await WsPeer.open(url);
  await using b = await WsPeer.open(url);
  await using producer = await WsPeer.open(url);
  await a.register({ type: "scheduler" });
  await b.register({ type: "scheduler" });
  await producer.register({ type: "producer" });
  await bus.waitFor(/registered as producer/);
  for (let n = 1; n <= 4; n++) {
    producer.send({ cmd: "job_request", payload: { priority: 5, runtime: 1, n } });
  }
  await until("4 payloads delivered", () => a.frames.length + b.frames.length === 4, 5000);
  // Nothing more comes: each socket delivers in order, so whatever the bus still had to send
  // for jobs 1-4 would arrive before these markers (a job each for a and b, and for the
  // producer the answer to a request it may not make).
  for (const n of [5, 6]) {
    producer.send({ cmd: "job_request", payload: { priority: 5, runtime: 1, n } });
  }
  producer.send({ cmd: "cancel", id: "marker" });
  await until("the markers delivered", () => a.frames.length + b.frames.length === 6, 5000);
  assert.equal((await producer.next()).cmd, "error"); // the marker's answer
  const got = (peer: WsPeer): Message[] => peer.all().filter((m) => Number(m.n) <= 4);
  assert.deepEqual([...got(a), ...got(b)].map((m) => m.n).sort(), [1, 2, 3, 4]);
  assert.deepEqual(got(a).map((m) => m.n), [1, 3]); // alternating, in arrival order
  assert.deepEqual(got(b), [{ priority: 5, runtime: 1, n: 2 }, { priority: 5, runtime: 1, n: 4 }]);
  assert.deepEqual(a.all().at(-1), { priority: 5, runtime: 1, n: 5 }); // each marker came last
  assert.deepEqual(b.all().at(-1), { priority: 5, runtime: 1, n: 6 });
  assert.equal(producer.frames.length, 1); // a seed producer hears nothing when all is well
});

Deno.test("e2e: a seed-format producer's job runs on a protocol-2 scheduler CLI", async () => {
  const [bus, url] = await startBus();
  await using _bus = bus;
  await using monitor = await WsPeer.open(url);
  await monitor.register({ type: "monitor", protocol: 2 });
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer" });
  // Sent while no scheduler is there: the bus holds it.
  producer.send({ cmd: "job_request", payload: { priority: 2, runtime: 0.2, tag: "seed" } });
  const queued = await monitor.next((m) => m.state === "queued");
  await using scheduler = Cli.run("scheduler/main.ts", ["--url", url, "--name", "v2"], "sched");
  const done = await monitor.next((m) => m.id === queued.id && m.state === "succeeded", 15_000);
  assert.equal(done.scheduler, "v2");
  assert.equal(done.priority, 2);
  await scheduler.waitFor(new RegExp(`job ${queued.id} p2 succeeded after 0\\.\\d s`));
  assert.deepEqual(producer.frames, []);
});
