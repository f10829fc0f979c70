/**
 * End to end: Ctrl-C (SIGINT) and SIGTERM on each CLI — exit 0, nothing left behind — and the
 * exact commands of the design card, run through `deno task` as a person would.
 */

import assert from "node:assert/strict";
import { JobGenerator } from "../../producer/generator.ts";
import { Cli, descendants, startBus, survivors } from "../fixtures/e2e_cli.ts";

/** Sends `signal` to the CLI's group; asserts exit 0 and that its descendants are gone. */
async function stops(cli: Cli, signal: Deno.Signal, stopped: RegExp): Promise<void> {
  const tree = descendants(cli.pid);
  cli.signal(signal);
  assert.equal(await cli.exitCode(), 0, `${cli.label} after ${signal}:\n${cli.tail()}`);
  assert.match(cli.text, stopped, `${cli.label}:\n${cli.tail()}`);
  assert.deepEqual(await survivors(tree), [], `${cli.label} left processes behind`);
}

/** Waits until the scheduler CLI runs `n` jobs on its `n` slots. */
async function busyWith(cli: Cli, n: number): Promise<void> {
  await cli.waitFor(new RegExp(`started.*\\[slots ${n}/${n}`));
}

Deno.test("e2e: bus, scheduler and producer CLIs exit 0 on SIGINT and SIGTERM, leaving nothing", async () => {
  const [bus, url] = await startBus();
  await using _bus = bus;
  const args = (name: string): string[] => ["--url", url, "--name", name];
  await using sInt = Cli.run("scheduler/main.ts", [...args("s-int"), "-s", "2"], "s-int");
  await using sTerm = Cli.run("scheduler/main.ts", [...args("s-term"), "-s", "2"], "s-term");
  const jobs = ["-p", "0.1", "--runtime", "5", "--priority", "5"];
  await using pInt = Cli.run("producer/main.ts", [...args("p-int"), ...jobs], "p-int");
  await using pTerm = Cli.run("producer/main.ts", [...args("p-term"), ...jobs], "p-term");
  await Promise.all([busyWith(sInt, 2), busyWith(sTerm, 2)]);
  assert.equal(descendants(sInt.pid).length, 2, "s-int runs two sleepers");
  await Promise.all([
    stops(pInt, "SIGINT", /produced \d+ jobs? \(stopped\)/),
    stops(pTerm, "SIGTERM", /produced \d+ jobs? \(stopped\)/),
  ]);
  // The schedulers terminate their running sleepers (the tree is read before the signal).
  await Promise.all([
    stops(sInt, "SIGINT", /stopping: terminating 2 jobs;[\s\S]*stopped \(/),
    stops(sTerm, "SIGTERM", /stopping: terminating 2 jobs;[\s\S]*stopped \(/),
  ]);
  await stops(bus, "SIGINT", /SIGINT: closing every connection[\s\S]*bus stopped/);
});

/**
 * A seed for the producer CLI's defaults with `-g -s 2` whose first job runs 10 s or more and
 * whose second comes 4 s or more later: the scheduler surely still runs exactly one job when
 * the test stops it (an unseeded gaussian wait is now and then short enough for a second).
 */
function oneLongJobSeed(): number {
  for (let seed = 1;; seed++) {
    const generator = new JobGenerator({
      seed,
      priority: [0, 10],
      runtimeS: [3, 15],
      periodS: 5,
      gauss: true,
      sigmaS: 2,
    });
    if (generator.nextJob().runtime >= 10 && generator.nextDelayMs() >= 4000) return seed;
  }
}

Deno.test("e2e: the design card's commands, run with deno task, start, connect and stop on SIGINT", async () => {
  // `deno task bus` with --port 0, not its default 8101: anything on this machine may connect
  // to 8101 (a developer's producer, another copy of the suite) and run jobs on this test's bus.
  await using bus = Cli.task("bus", ["--", "--port", "0", "--memory"], "bus");
  const [, port] = await bus.waitFor(/listening on ws:\/\/127\.0\.0\.1:(\d+)\//);
  const url = `ws://127.0.0.1:${port}`;
  await using scheduler = Cli.task("scheduler", ["--", "-s", "5", "-t", "10", "--url", url]);
  const seed = String(oneLongJobSeed());
  await using producer = Cli.task("producer", [
    "--",
    "-g",
    "-s",
    "2",
    "--url",
    url,
    "--seed",
    seed,
  ]);
  await scheduler.waitFor(/registered: 5 slots, timeout 10 s, evict requeue/);
  await producer.waitFor(/a gaussian wait of 5 ± 2 s/);
  await producer.waitFor(/ connected to the bus at /); // not "held until connected to the bus"
  // The producer's first job goes at once, and runs on the scheduler.
  await scheduler.waitFor(/job \S+ p\d+ started \(runtime \d+ s/);
  await stops(producer, "SIGINT", /produced \d+ jobs? \(stopped\)/);
  await stops(scheduler, "SIGINT", /stopping: terminating 1 job;[\s\S]*stopped \(/);
  await stops(bus, "SIGINT", /bus stopped/);
});
