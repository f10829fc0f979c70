import assert from "node:assert/strict";
import { cliRunner } from "../fixtures/cli_run.ts";
import { BusServer } from "../../bus/server.ts";
import { main, USAGE } from "../../scheduler/main.ts";
import { type Message, WsPeer } from "../fixtures/raw_ws.ts";

/** Runs the CLI's `main` with captured output. */
const run = cliRunner(main);

/** A bus on a free port, a v2 producer on it, and a monitor. */
async function busWithPeers(): Promise<
  { bus: BusServer; url: string; producer: WsPeer; monitor: WsPeer }
> {
  const bus = new BusServer({ port: 0, pingTimeoutMs: 0 });
  const url = `ws://127.0.0.1:${bus.listen().port}`;
  const producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2, name: "t" });
  const monitor = await WsPeer.open(url);
  await monitor.register({ type: "monitor", protocol: 2 });
  return { bus, url, producer, monitor };
}

const job = (id: string, priority: number, runtime: number): Message => ({
  cmd: "job_request",
  id,
  payload: { priority, runtime },
});
const final = (id: string) => (m: Message): boolean =>
  m.id === id && ["succeeded", "failed", "timed_out", "cancelled"].includes(String(m.state));

Deno.test("scheduler main --help prints the usage and returns 0, also after the task's --", async () => {
  for (const args of [["--help"], ["--", "-h"]]) {
    const { code, out, err } = await run(args);
    assert.equal(code, 0);
    assert.deepEqual(out, [USAGE]);
    assert.deepEqual(err, []);
  }
  assert.match(USAGE, /-s SIZE[\s\S]*-t TIMEOUT[\s\S]*--exec PATH/);
});

Deno.test("scheduler main: a bad flag prints one line and the usage, returns 2", async () => {
  const cases: [string[], RegExp][] = [
    [["-s", "0"], /^scheduler: -s must be a positive integer, got '0'$/],
    [["-s", "2.5"], /^scheduler: -s must be a positive integer/],
    [["-t", "soon"], /^scheduler: -t must be a positive number, got 'soon'$/],
    [["--evict", "nope"], /^scheduler: --evict must be requeue, kill or suspend, got 'nope'$/],
    [["--url", "http://x"], /^scheduler: --url must be a ws:\/\/ URL/],
    [["--min-run=-1"], /^scheduler: --min-run must be a number >= 0/],
    [["--exec", ""], /^scheduler: --exec must be a path/],
    [["--nope"], /^scheduler: .*--nope/],
    [["--", "stray"], /^scheduler: .*stray/],
  ];
  for (const [args, message] of cases) {
    const { code, out, err } = await run(args);
    assert.equal(code, 2, args.join(" "));
    assert.deepEqual(out, []);
    assert.equal(err.length, 2, args.join(" "));
    assert.match(err[0], message);
    assert.equal(err[1], USAGE);
  }
});

Deno.test("scheduler main: the design-card flags after the task's --, a job, stop by signal", async () => {
  const { bus, url, producer, monitor } = await busWithPeers();
  await using _bus = bus;
  await using _producer = producer;
  await using _monitor = monitor;
  const stop = new AbortController();
  const running = run(["--", "-s", "5", "-t", "10", "--url", url, "--name", "n1"], stop.signal);
  for (let i = 0; bus.status().schedulers.length === 0; i++) {
    assert.ok(i < 250, "the scheduler never registered");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(bus.status().schedulers[0].slots, 5);
  assert.equal(bus.status().schedulers[0].name, "n1");
  producer.send(job("quick", 3, 0.1));
  const done = await monitor.next(final("quick"), 10_000);
  assert.equal(done.state, "succeeded");
  assert.equal(done.scheduler, "n1");
  // A job still running when the signal comes is terminated and handed back to the bus.
  producer.send(job("long", 4, 30));
  await monitor.next((m) => m.id === "long" && m.state === "started", 10_000);
  stop.abort();
  const { code, out, err } = await running;
  assert.equal(code, 0);
  assert.deepEqual(err, []);
  const text = out.join("\n");
  assert.match(text, /registered: 5 slots, timeout 10 s, evict requeue/);
  assert.match(text, /job quick p3 succeeded after 0\.\d s \[slots 0\/5, waiting 0\]/);
  assert.match(text, /stopping: terminating 1 job\(s\); the bus requeues them/);
  assert.match(out.at(-1)!, /stopped \(.*succeeded 1/);
  await monitor.next((m) => m.id === "long" && m.state === "requeued");
});

Deno.test("scheduler main --exec runs PATH <runtime> for each job; a missing PATH fails jobs", async () => {
  const { bus, url, producer, monitor } = await busWithPeers();
  await using _bus = bus;
  await using _producer = producer;
  await using _monitor = monitor;
  for (const [exec, expected] of [["/bin/sleep", "succeeded"], ["/no/such/exe", "failed"]]) {
    const stop = new AbortController();
    const running = run(["--url", url, "-s", "2", "-t", "5", "--exec", exec], stop.signal);
    const id = `${expected}-job`;
    producer.send(job(id, 2, 0.05));
    const done = await monitor.next(final(id), 10_000);
    stop.abort();
    const { code, out } = await running;
    assert.equal(code, 0);
    assert.equal(done.state, expected, out.join("\n"));
    if (expected === "failed") assert.match(String(done.reason), /\/no\/such\/exe/);
  }
});
