/**
 * End to end: the bus keeps its promises with real CLI processes — no job lost, none run
 * twice — when schedulers join late, die by SIGKILL, freeze and come back, or the bus restarts.
 */

import assert from "node:assert/strict";
import { Cli, descendants, startBus, survivors, until } from "../fixtures/e2e_cli.ts";
import { TcpRelay } from "../fixtures/tcp_relay.ts";
import { JobLedger } from "../fixtures/e2e_ledger.ts";
import { WsPeer } from "../fixtures/raw_ws.ts";

/** A protocol-2 monitor on the bus. */
async function monitorOn(url: string): Promise<WsPeer> {
  const monitor = await WsPeer.open(url);
  await monitor.register({ type: "monitor", protocol: 2 });
  return monitor;
}

/** The monitor's events so far, in a ledger. */
function ledgerOf(monitor: WsPeer): JobLedger {
  const ledger = new JobLedger();
  for (const message of monitor.all()) ledger.record(message);
  return ledger;
}

function scheduler(url: string, name: string, slots: number): Cli {
  return Cli.run("scheduler/main.ts", ["--url", url, "--name", name, "-s", String(slots)], name);
}

const started = (cli: Cli): number => cli.lines.filter((line) => / started \(/.test(line)).length;

Deno.test("e2e: jobs wait for schedulers; a SIGKILLed scheduler's jobs finish elsewhere", async () => {
  const [bus, url] = await startBus();
  await using _bus = bus;
  await using monitor = await monitorOn(url);
  // Two producers submit four jobs while no scheduler is connected.
  const producer = (name: string): Cli =>
    Cli.run("producer/main.ts", [
      ...["--url", url, "--name", name, "--count", "2", "--wait", "-p", "0"],
      ...["--runtime", "1", "--priority", "5"],
    ], name);
  await using q = producer("q");
  await using r = producer("r");
  await until("4 queued", () => monitor.all().filter((m) => m.state === "queued").length === 4);
  await using a = scheduler(url, "A", 2);
  await until("2 started on A", () => started(a) === 2);
  await using b = scheduler(url, "B", 2);
  await until("2 started on B", () => started(b) === 2);
  // A dies mid-job; its sleepers see their parent gone (the lifeline) and exit by themselves.
  const sleepers = descendants(a.pid);
  assert.equal(sleepers.length, 2, `A's children: ${sleepers}`);
  await a.proc.kill();
  assert.deepEqual(await survivors(sleepers, 3000), [], "A's sleepers outlived it");
  for (const p of [q, r]) {
    assert.equal(await p.exitCode(20_000), 0, p.text);
    assert.match(p.text, /outcomes: succeeded 2$/m);
  }
  const ledger = ledgerOf(monitor);
  const ids = ["q-1", "q-2", "r-1", "r-2"];
  assert.deepEqual(ledger.unsettled(ids), []);
  assert.deepEqual(ledger.anomalies, []);
  const moved = ids.filter((id) => ledger.starts.get(id)?.[0] === "A");
  assert.equal(moved.length, 2);
  for (const id of moved) {
    assert.deepEqual(ledger.starts.get(id), ["A", "B"]);
    assert.deepEqual(ledger.states.get(id), [
      "queued",
      "started",
      "requeued",
      "started",
      "succeeded",
    ]);
  }
});

Deno.test("e2e: a scheduler that froze and reconnects is told to cancel its reassigned job", async () => {
  const [bus, url] = await startBus(["--port", "0", "--memory", "--ping-timeout", "1"]);
  await using _bus = bus;
  await using monitor = await monitorOn(url);
  await using a = scheduler(url, "A", 1);
  await a.waitFor(/registered:/);
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2, name: "raw" });
  producer.send({ cmd: "job_request", id: "r", payload: { priority: 3, runtime: 8 } });
  await a.waitFor(/job r p3 started/);
  const sleeper = descendants(a.pid).slice(0, 1); // r's sleeper, A's first descendant
  await using b = scheduler(url, "B", 1);
  await b.waitFor(/registered:/);
  // A freezes (its sleeper runs on); the bus hears no pong, gives up on A and gives r to B.
  Deno.kill(a.pid, "SIGSTOP");
  try {
    await monitor.next((m) => m.id === "r" && m.state === "started" && m.scheduler === "B", 10_000);
  } finally {
    Deno.kill(a.pid, "SIGCONT");
  }
  // A comes back reporting r; the bus tells it r was reassigned, and A stops its copy.
  await a.waitFor(/bus cancels job r: reassigned/);
  await a.waitFor(/job r p3 cancelled: reassigned/);
  assert.deepEqual(await survivors(sleeper, 3000), []);
  const ledger = ledgerOf(monitor);
  assert.deepEqual(ledger.anomalies, []);
  assert.deepEqual(ledger.states.get("r"), ["queued", "started", "requeued", "started"]);
  assert.deepEqual(ledger.starts.get("r"), ["A", "B"]);
});

Deno.test("e2e: scheduler and producer CLIs reconnect after the bus restarts", async () => {
  // The clients' port is a relay's, held all along: each bus binds a new port of its own.
  let [bus, busUrl] = await startBus();
  await using relay = new TcpRelay(Number(new URL(busUrl).port));
  const url = relay.url;
  try {
    await using s = scheduler(url, "s", 2);
    await using producer = Cli.run("producer/main.ts", [
      "--url",
      url,
      "--name",
      "p",
      "-p",
      "0.5",
      "--runtime",
      "1",
      "--priority",
      "5",
    ], "producer");
    await s.waitFor(/registered:/);
    await producer.waitFor(/ connected to the bus at /); // not "held until connected to the bus"
    relay.target = undefined; // nothing listens there while the bus is away
    bus.signal("SIGTERM");
    assert.equal(await bus.exitCode(), 0, bus.text);
    await s.waitFor(/lost the bus/);
    await producer.waitFor(/lost the bus/);
    [bus, busUrl] = await startBus();
    relay.target = Number(new URL(busUrl).port);
    await s.waitFor(/reconnected to/);
    await producer.waitFor(/reconnected to the bus at /);
    // A job submitted after the restart runs on the scheduler.
    const from = producer.lines.findIndex((line) => /reconnected to the bus at /.test(line));
    const [, id] = await producer.waitFor(
      / (p-\d+) \(priority \d+, runtime 1 s\) submitted/,
      5000,
      from,
    );
    await producer.waitFor(new RegExp(`${id} succeeded on s`), 10_000, from);
    assert.equal(s.proc.outcome, undefined, "the scheduler kept going");
    assert.equal(producer.proc.outcome, undefined, "the producer kept going");
  } finally {
    await bus[Symbol.asyncDispose]();
  }
});
