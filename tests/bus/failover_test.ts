import assert from "node:assert/strict";
import { BusClient, type BusReconnectingEvent } from "../../bus/client.ts";
import { BusServer } from "../../bus/server.ts";
import { SchedulerClient } from "../../bus/scheduler_client.ts";
import { Producer } from "../../producer/producer.ts";
import { main as producerMain } from "../../producer/main.ts";
import { main as submitMain } from "../../producer/submit.ts";
import { main as jobsMain } from "../../producer/jobs.ts";
import { main as schedulerMain } from "../../scheduler/main.ts";
import { FakeLauncher } from "../scheduler/fake_launcher.ts";
import { DeadPort } from "../fixtures/dead_port.ts";
import { runMain } from "../fixtures/cli_run.ts";

const REGISTER = { cmd: "register", type: "producer", protocol: 2, name: "t" };
/** A backoff so long that a test waiting on it would time out: a move must not wait. */
const SLOW = { initialMs: 60_000, maxMs: 60_000 };

/** Polls `check` every 5 ms until it is true; fails after `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function busOn(): { bus: BusServer; url: string } {
  const bus = new BusServer({ port: 0, pingTimeoutMs: 0 });
  const url = `ws://127.0.0.1:${bus.listen().port}`;
  return { bus, url };
}

/** Records every `reconnecting` of a client (their `delayMs` show whether it waited). */
function noWaiting(client: BusClient): BusReconnectingEvent[] {
  const seen: BusReconnectingEvent[] = [];
  client.addEventListener("reconnecting", (event) => seen.push(event));
  return seen;
}

Deno.test("BusClient rejects an empty list and a list with a non-WebSocket URL", () => {
  const register = (): object => REGISTER;
  assert.throws(() => new BusClient([], { register }), /non-empty list/);
  assert.throws(
    () => new BusClient(["ws://127.0.0.1:1", "http://x"], { register }),
    /'url\[1\]' must be a ws:\/\/ or wss:\/\/ URL, got http:\/\/x/,
  );
});

Deno.test("BusClient with a dead first URL uses the second at once", async () => {
  await using dead = new DeadPort();
  const { bus, url } = busOn();
  await using _bus = bus;
  await using client = new BusClient([dead.url, url], { register: () => REGISTER, backoff: SLOW });
  assert.deepEqual(client.urls, [dead.url, url]);
  assert.equal(client.url, dead.url);
  const seen = noWaiting(client);
  const opened = new Promise<string>((resolve) =>
    client.addEventListener("open", (event) => resolve(event.url), { once: true })
  );
  client.start();
  assert.equal(await opened, url);
  assert.equal(client.url, url);
  assert.deepEqual(seen.map((e) => [e.attempt, e.delayMs, e.from, e.url]), [[1, 0, dead.url, url]]);
});

Deno.test("BusClient backs off only once every URL failed in a row, then goes round again", async () => {
  await using a = new DeadPort();
  await using b = new DeadPort();
  await using client = new BusClient([a.url, b.url], {
    register: () => REGISTER,
    backoff: { initialMs: 1, maxMs: 1, jitter: "none" },
  });
  const seen = noWaiting(client);
  client.start();
  await until("four attempts", () => seen.length >= 4);
  await client.close();
  assert.deepEqual(
    seen.slice(0, 4).map((e) => [e.attempt, e.delayMs, e.url]),
    [[1, 0, b.url], [2, 1, a.url], [3, 0, b.url], [4, 1, a.url]],
  );
});

Deno.test("SchedulerClient moves to the second bus when the first closes, and registers its running jobs there", async () => {
  const first = busOn();
  const second = busOn();
  await using _second = second.bus;
  const fake = new FakeLauncher();
  await using scheduler = new SchedulerClient([first.url, second.url], {
    slots: 2,
    launch: fake.launch,
    name: "s",
    backoff: SLOW,
  });
  const seen = noWaiting(scheduler.bus);
  const opens: string[] = [];
  scheduler.bus.addEventListener("open", (event) => opens.push(event.url));
  const notices: string[] = [];
  second.bus.addEventListener("notice", (event) => notices.push(event.message));
  try {
    scheduler.start();
    await until("s registered on the first bus", () => first.bus.health().schedulers.v2 === 1);
    await using producer = new Producer(first.url, { name: "p" });
    producer.start();
    producer.submit({ priority: 2, runtime: 5 });
    await until("p-1 launched", () => fake.live().length === 1);
  } finally {
    await first.bus.close(); // the first bus dies; p-1 keeps running
  }
  await until("s registered on the second bus", () => second.bus.health().schedulers.v2 === 1);
  assert.deepEqual(opens, [first.url, second.url]);
  assert.deepEqual(seen.map((e) => [e.delayMs, e.url]), [[0, second.url]]);
  // Its register named p-1 as running: the second bus (with a store of its own here) says so.
  await until("the second bus handled p-1", () => notices.some((n) => /unknown job p-1\b/.test(n)));
  assert.equal(fake.launched.length, 1, "nothing ran twice");
});

Deno.test("Producer moves to the second bus when the first closes and re-sends its unfinished jobs", async () => {
  const first = busOn();
  const second = busOn();
  await using _second = second.bus;
  await using producer = new Producer([first.url, second.url], { name: "p", backoff: SLOW });
  const seen = noWaiting(producer.client);
  const resent: string[] = [];
  producer.addEventListener("job", (event) => {
    if (event.change === "resent") resent.push(event.job.id);
  });
  try {
    producer.start();
    producer.submit({ priority: 1, runtime: 3 });
    producer.submit({ priority: 2, runtime: 3 });
    await producer.onAnswered(); // accepted by the first bus, queued: no scheduler there
    assert.equal(producer.unfinished, 2);
  } finally {
    await first.bus.close();
  }
  await until("both re-sent to the second bus", () => resent.length === 2);
  await until("the second bus holds both", () => second.bus.health().jobs.queued === 2);
  assert.deepEqual(resent, ["p-1", "p-2"]);
  assert.deepEqual(seen.map((e) => [e.delayMs, e.url]), [[0, second.url]]);
});

Deno.test("every client CLI answers a bad --url list with one line and exit 2", async () => {
  const cases: [string[], string][] = [
    [["--url", "ws://a:1,http://x"], "--url: the 2nd URL 'http://x' is not a ws:// or wss:// URL"],
    [["--url", "ws://a:1,"], "--url: the 2nd URL is empty"],
    [
      ["--url", "ws://a:1", "--url", "ws://b:1,ws://a:1"],
      "--url: the 3rd URL 'ws://a:1' repeats the 1st",
    ],
  ];
  const clis = [
    { main: producerMain, tail: [] },
    { main: submitMain, tail: ["--", "true"] },
    { main: jobsMain, tail: ["list"] },
    { main: schedulerMain, tail: [] },
  ];
  for (const { main, tail } of clis) {
    for (const [args, message] of cases) {
      const { code, err } = await runMain(main, [...args, ...tail]);
      assert.equal(code, 2, args.join(" "));
      assert.ok(err.some((line) => line.endsWith(message)), `${err[0]} ≠ ${message}`);
    }
  }
});

Deno.test("scheduler CLI with --url dead,live names the bus it connected to, and moves on when it closes", async () => {
  await using dead = new DeadPort();
  const first = busOn();
  const second = busOn();
  await using _second = second.bus;
  const stop = new AbortController();
  const lines: string[] = [];
  let seen = (_line: string): void => {};
  const saw = (pattern: RegExp): Promise<void> =>
    new Promise((resolve) => {
      seen = (line) => pattern.test(line) && resolve();
      if (lines.some((line) => pattern.test(line))) resolve();
    });
  const onLine = (line: string): void => {
    lines.push(line);
    seen(line);
  };
  const urls = [dead.url, first.url, second.url].join(",");
  const running = runMain(schedulerMain, ["--url", urls, "--name", "s"], stop.signal, onLine);
  try {
    await saw(new RegExp(`connected to ${first.url} as s`));
    await first.bus.close();
    await saw(new RegExp(`reconnected to ${second.url} as s`));
  } finally {
    await first.bus.close();
    stop.abort();
  }
  const { code } = await running;
  assert.equal(code, 0);
  const said = lines.map((line) => line.replace(/^\S+ /, "")).join("\n");
  assert.match(said, new RegExp(`trying the next bus, at ${first.url}`));
  assert.match(said, new RegExp(`lost the bus at ${first.url} \\(code 1001`));
  assert.doesNotMatch(said, /retrying every/, "no backoff: a live bus was next each time");
});
