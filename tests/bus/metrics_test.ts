import assert from "node:assert/strict";
import { BusServer, type BusServerOptions } from "../../bus/server.ts";
import { BusMetrics } from "../../bus/bus_metrics.ts";
import { MetricsError, MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from "../../bus/metrics.ts";
import { TokenStore } from "../../bus/token_store.ts";
import { type Message, upgradeAnswer, WsPeer } from "../fixtures/raw_ws.ts";
import { FakeClock } from "../fake_clock.ts";
import { parseProm, PromParseError, sampleValue } from "./prom_parser.ts";

const isJob = (m: Message): boolean => m.cmd === "job";
const event = (id: string, state: string) => (m: Message): boolean =>
  m.cmd === "event" && m.id === id && m.state === state;
const submit = (id: string, priority: number): Message => ({
  cmd: "job_request",
  id,
  payload: { priority, runtime: 1 },
});

function start(
  clock: FakeClock,
  options: BusServerOptions & { open?: boolean } = {},
): { bus: BusServer; metrics: BusMetrics; url: string; http: string } {
  const { open = false, ...rest } = options;
  const bus = new BusServer({
    port: 0,
    lostFenceMs: 0, // a lost scheduler's job waits in the queue at once (counted as waiting)
    ...rest,
    metrics: { text: (): string => metrics.render(), open },
  });
  const metrics = new BusMetrics(bus, { clock });
  const { port } = bus.listen();
  return { bus, metrics, url: `ws://127.0.0.1:${port}/`, http: `http://127.0.0.1:${port}` };
}

async function scrape(http: string, init: RequestInit = {}): Promise<string> {
  const response = await fetch(`${http}/metrics`, init);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
  return await response.text();
}

Deno.test("/metrics: the whole output parses strictly and matches a known run", async () => {
  const clock = new FakeClock();
  const { bus, metrics, url, http } = start(clock);
  await using _bus = bus;
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2 });
  // t=0: three jobs wait (no scheduler yet).
  for (const [id, priority] of [["a", 1], ["b", 1], ["c", 3]] as const) {
    producer.send(submit(id, priority));
    await producer.next((m) => m.cmd === "accepted" && m.id === id);
  }
  let f = parseProm(await scrape(http));
  assert.equal(sampleValue(f, "sched_jobs_waiting", { priority: "1" }), 2);
  assert.equal(sampleValue(f, "sched_jobs_waiting", { priority: "3" }), 1);
  assert.equal(sampleValue(f, "sched_connections", { role: "producer" }), 1);

  await clock.tick(2000); // a waits 2 s
  const scheduler = await WsPeer.open(url);
  await scheduler.register({ type: "scheduler", protocol: 2, slots: 1, name: "n1" });
  assert.equal((await scheduler.next(isJob)).id, "a");
  scheduler.send({ cmd: "event", id: "a", state: "started" });
  await producer.next(event("a", "started"));
  await clock.tick(3000); // a runs 3 s
  scheduler.send({ cmd: "event", id: "a", state: "succeeded", result: { code: 0 } });
  await producer.next(event("a", "succeeded"));
  assert.equal((await scheduler.next(isJob)).id, "b"); // b waited 5 s
  scheduler.send({ cmd: "event", id: "b", state: "started" });
  await producer.next(event("b", "started"));
  await clock.tick(1000); // b runs 1 s
  scheduler.send({ cmd: "event", id: "b", state: "failed", result: { code: 1 } });
  await producer.next(event("b", "failed"));
  assert.equal((await scheduler.next(isJob)).id, "c"); // c waited 6 s
  scheduler.send({ cmd: "event", id: "c", state: "started" });
  await producer.next(event("c", "started"));

  f = parseProm(await scrape(http));
  assert.equal(sampleValue(f, "sched_jobs_submitted_total", { priority: "1" }), 2);
  assert.equal(sampleValue(f, "sched_jobs_submitted_total", { priority: "3" }), 1);
  assert.equal(sampleValue(f, "sched_jobs_finished_total", { outcome: "succeeded" }), 1);
  assert.equal(sampleValue(f, "sched_jobs_finished_total", { outcome: "failed" }), 1);
  assert.equal(sampleValue(f, "sched_jobs_waiting", { priority: "1" }), undefined);
  assert.equal(sampleValue(f, "sched_jobs_running"), 1);
  assert.equal(sampleValue(f, "sched_slots", { state: "used" }), 1);
  assert.equal(sampleValue(f, "sched_slots", { state: "free" }), 0);
  assert.equal(sampleValue(f, "sched_schedulers_connected", { protocol: "2" }), 1);
  assert.equal(sampleValue(f, "sched_connections", { role: "scheduler" }), 1);
  assert.equal(sampleValue(f, "sched_job_wait_seconds_count"), 3);
  assert.equal(sampleValue(f, "sched_job_wait_seconds_sum"), 13);
  assert.equal(sampleValue(f, "sched_job_wait_seconds_bucket", { le: "1" }), 0);
  assert.equal(sampleValue(f, "sched_job_wait_seconds_bucket", { le: "5" }), 2);
  assert.equal(sampleValue(f, "sched_job_wait_seconds_bucket", { le: "10" }), 3);
  assert.equal(sampleValue(f, "sched_job_run_seconds_count"), 2);
  assert.equal(sampleValue(f, "sched_job_run_seconds_sum"), 4);
  assert.equal(sampleValue(f, "sched_job_run_seconds_bucket", { le: "1" }), 1);
  assert.equal(sampleValue(f, "sched_job_evictions_total"), 0);
  assert.equal(sampleValue(f, "sched_job_requeues_total"), 0);
  assert.ok(sampleValue(f, "sched_process_resident_memory_bytes")! > 1_000_000);
  assert.ok(sampleValue(f, "sched_process_cpu_seconds_total")! > 0);

  // The scheduler goes away: c goes back to the queue.
  await scheduler.close();
  await producer.next(event("c", "requeued"));
  f = parseProm(await scrape(http));
  assert.equal(sampleValue(f, "sched_job_requeues_total"), 1);
  assert.equal(sampleValue(f, "sched_jobs_waiting", { priority: "3" }), 1);
  assert.equal(sampleValue(f, "sched_jobs_running"), 0);
  assert.equal(sampleValue(f, "sched_schedulers_connected", { protocol: "2" }), 0);
  assert.equal(sampleValue(f, "sched_connections", { role: "scheduler" }), 0);
  // Every turn that wrote was one commit of the bus's store (in memory here).
  const commits = sampleValue(f, "sched_store_commit_seconds_count")!;
  assert.ok(commits >= 3, `commits: ${commits}`);
  assert.equal(sampleValue(f, "sched_store_commit_seconds_bucket", { le: "+Inf" }), commits);
  assert.equal(sampleValue(f, "sched_store_commit_failures_total"), 0);
  for (const family of f.values()) assert.match(family.name, /^sched_/);
  metrics.close();
});

Deno.test("/metrics with --auth: a metrics, monitor or admin token, or open mode", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await TokenStore.load(`${dir}/auth.json`, { missingOk: true });
    const secrets: Record<string, string> = {};
    for (const role of ["metrics", "monitor", "admin", "producer"] as const) {
      secrets[role] = await store.add(role, role);
    }
    const bearer = (secret: string | undefined): RequestInit => ({
      headers: { authorization: `Bearer ${secret}` },
    });
    const clock = new FakeClock();
    {
      const { bus, http } = start(clock, { auth: store });
      await using _bus = bus;
      const none = await fetch(`${http}/metrics`);
      assert.equal(none.status, 401);
      await none.body?.cancel();
      const producer = await fetch(`${http}/metrics`, bearer(secrets.producer));
      assert.equal(producer.status, 401);
      assert.match(await producer.text(), /needs a metrics or monitor or admin token/);
      for (const role of ["metrics", "monitor", "admin"]) {
        parseProm(await scrape(http, bearer(secrets[role])));
      }
      // A metrics token opens no WebSocket.
      const port = Number(new URL(http).port);
      const answer = await upgradeAnswer(port, { authorization: `Bearer ${secrets.metrics}` });
      assert.equal(answer.status, 401);
      assert.match(answer.body, /may only read \/metrics/);
    }
    {
      const { bus, http } = start(clock, { auth: store, open: true });
      await using _bus = bus;
      parseProm(await scrape(http));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("/metrics is 404 on a BusServer without the metrics option", async () => {
  await using bus = new BusServer({ port: 0 });
  const { port } = bus.listen();
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(response.status, 404);
  await response.body?.cancel();
});

Deno.test("MetricsRegistry: escaping, histogram buckets and refusals", () => {
  const registry = new MetricsRegistry();
  const counter = registry.counter("t_x_total", {
    help: 'a "quoted"\\ help\nline',
    labelNames: ["k"],
  });
  counter.inc({ k: 'va"l\\ue\nx' }, 2);
  const histogram = registry.histogram("t_d_seconds", { help: "d", buckets: [0.5, 1] });
  histogram.observe({}, 0.25);
  histogram.observe({}, 0.75);
  histogram.observe({}, 10);
  const text = registry.render();
  const f = parseProm(text);
  assert.equal(f.get("t_x_total")?.help, 'a "quoted"\\ help\nline');
  assert.equal(sampleValue(f, "t_x_total", { k: 'va"l\\ue\nx' }), 2);
  assert.deepEqual(
    f.get("t_d_seconds")?.samples.map((s) => [s.name, s.labels.le, s.value]),
    [
      ["t_d_seconds_bucket", "0.5", 1],
      ["t_d_seconds_bucket", "1", 2],
      ["t_d_seconds_bucket", "+Inf", 3],
      ["t_d_seconds_sum", undefined, 11],
      ["t_d_seconds_count", undefined, 3],
    ],
  );
  assert.throws(() => registry.counter("t_bad", { help: "x" }), MetricsError);
  assert.throws(() => registry.gauge("t-bad", { help: "x" }), MetricsError);
  assert.throws(() => registry.gauge("t_x_total", { help: "x" }), /already exists/);
  assert.throws(() => counter.inc({}), /labels must be exactly \[k\]/);
  assert.throws(() => counter.inc({ k: "1" }, -1), /cannot go down/);
  assert.throws(() => registry.histogram("t_h", { help: "h", buckets: [2, 1] }), /increase/);
});

Deno.test("prom_parser refuses what a scraper would", () => {
  const bad = [
    "# HELP a_total A.\n# TYPE a_total counter\na_total 1", // no final newline
    "# HELP a A.\n# TYPE a counter\na 1\n", // counter without _total
    '# HELP a A.\n# TYPE a gauge\na{b="1"} x\n', // bad value
    '# HELP a A.\n# TYPE a gauge\na{b="\\t"} 1\n', // bad escape
    '# HELP a A.\n# TYPE a gauge\na{b="1",b="2"} 1\n', // label twice
    "# HELP a A.\n# TYPE a gauge\na 1\n# HELP b B.\n# TYPE b gauge\nb 1\na 2\n", // not contiguous
    "# TYPE a gauge\na 1\n", // no HELP
    '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\n' +
    "h_sum 1\nh_count 1\n", // not cumulative
    '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', // no +Inf
  ];
  for (const text of bad) assert.throws(() => parseProm(text), PromParseError, text);
});
