import assert from "node:assert/strict";
import { formatLog, logFormatFlag, runCli, UsageError } from "../../cli/mod.ts";
import { main as busMain } from "../../bus/main.ts";
import { main as schedulerMain } from "../../scheduler/main.ts";
import { runMain } from "../fixtures/cli_run.ts";
import { WsPeer } from "../fixtures/raw_ws.ts";
import { FakeClock } from "../fake_clock.ts";

Deno.test("formatLog: today's stamped line for text, one JSON object for json", () => {
  const time = Date.UTC(2026, 0, 2, 3, 4, 5, 6);
  const record = {
    time,
    level: "warning",
    message: "job j-1 requeued",
    fields: { job: "j-1", priority: 3, scheduler: undefined, message: "clash" },
  } as const;
  assert.match(formatLog("text", record), /^\d\d:\d\d:\d\d\.006 warning: job j-1 requeued$/);
  const line = formatLog("json", record);
  assert.ok(!line.includes("\n"));
  assert.deepEqual(JSON.parse(line), {
    time: "2026-01-02T03:04:05.006Z",
    level: "warning",
    message: "job j-1 requeued",
    job: "j-1",
    priority: 3,
    field_message: "clash",
  });
  assert.equal(logFormatFlag(undefined), "text");
  assert.throws(() => logFormatFlag("xml"), UsageError);
});

Deno.test("runCli: every CLI takes --log-format; io.log and io.warn follow it", async () => {
  const out: string[] = [];
  const err: string[] = [];
  const spec = {
    name: "t",
    usage: "Usage: t",
    options: {},
    configure: () => undefined,
    run: (_: undefined, io: { log: typeof console.log; warn: typeof console.log }) => {
      io.log("hello", { job: "j-1" });
      io.warn("careful");
      return Promise.resolve(0);
    },
  };
  const options = {
    stdout: (l: string) => out.push(l),
    stderr: (l: string) => err.push(l),
    clock: new FakeClock(0),
  };
  assert.equal(await runCli(spec, ["--log-format", "json"], options), 0);
  assert.deepEqual(out.map((l) => JSON.parse(l)), [
    { time: "1970-01-01T00:00:00.000Z", level: "info", message: "hello", job: "j-1" },
  ]);
  assert.deepEqual(JSON.parse(err[0]!), {
    time: "1970-01-01T00:00:00.000Z",
    level: "warning",
    message: "careful",
  });
  out.length = err.length = 0;
  assert.equal(await runCli(spec, [], options), 0);
  assert.match(out[0]!, /^\d\d:\d\d:\d\d\.000 hello$/);
  out.length = err.length = 0;
  assert.equal(await runCli(spec, ["--log-format", "xml"], options), 2);
  assert.equal(err[0], "t: --log-format must be text or json, got 'xml'");
});

Deno.test("bus main --log-format json: one object per line, with the line's fields", async () => {
  const stop = new AbortController();
  const { promise: url, resolve } = Promise.withResolvers<string>();
  const { promise: registered, resolve: sawRegistration } = Promise.withResolvers<void>();
  const done = runMain(
    busMain,
    ["--port", "0", "--log-format", "json", "--summary-every", "0"],
    stop.signal,
    (line) => {
      const parsed = JSON.parse(line);
      const listening = /listening on (ws:\/\/\S+\/) \(/.exec(parsed.message);
      if (listening?.[1]) resolve(listening[1]);
      if (parsed.role === "scheduler") sawRegistration();
    },
  );
  {
    await using peer = await WsPeer.open(await url);
    await peer.register({ type: "scheduler", protocol: 2, slots: 2, name: "n1" });
    await registered;
  }
  stop.abort();
  const { code, out } = await done;
  assert.equal(code, 0);
  const lines = out.map((line) => JSON.parse(line));
  for (const line of lines) {
    assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(line.level, "info");
    assert.equal(typeof line.message, "string");
  }
  const registration = lines.find((line) => line.role === "scheduler");
  assert.equal(registration.name, "n1");
  assert.equal(registration.protocol, 2);
  assert.match(registration.message, /registered as scheduler "n1" \(protocol 2\)/);
  assert.equal(lines.at(-1).message, "bus stopped");
});

Deno.test("scheduler main --log-format json: its lines are JSON objects too", async () => {
  const stop = new AbortController();
  const { promise: connecting, resolve } = Promise.withResolvers<void>();
  const done = runMain(
    schedulerMain,
    ["--url", "ws://127.0.0.1:9/", "--log-format", "json"],
    stop.signal,
    () => resolve(),
  );
  await connecting;
  stop.abort();
  const { out } = await done;
  assert.ok(out.length > 0);
  for (const line of out) assert.equal(typeof JSON.parse(line).message, "string");
});
