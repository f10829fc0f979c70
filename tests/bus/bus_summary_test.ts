import assert from "node:assert/strict";
import { BusServer } from "../../bus/server.ts";
import { BusSummary, type BusSummaryFields } from "../../bus/bus_summary.ts";
import { type Message, WsPeer } from "../fixtures/raw_ws.ts";
import { FakeClock } from "../fake_clock.ts";

const event = (id: string, state: string) => (m: Message): boolean =>
  m.cmd === "event" && m.id === id && m.state === state;

Deno.test("BusSummary: a line every S seconds only when something changed", async () => {
  const clock = new FakeClock();
  await using bus = new BusServer({ port: 0 });
  const { port } = bus.listen();
  const url = `ws://127.0.0.1:${port}/`;
  const lines: [string, BusSummaryFields][] = [];
  const summary = new BusSummary(bus, {
    everyS: 10,
    clock,
    log: (line, fields) => lines.push([line, fields]),
  });
  try {
    await clock.tick(10_000);
    assert.deepEqual(lines, [], "nothing changed: no line");

    await using producer = await WsPeer.open(url);
    await producer.register({ type: "producer", protocol: 2 });
    for (const id of ["a", "b"]) {
      producer.send({ cmd: "job_request", id, payload: { priority: 1, runtime: 1 } });
      await producer.next((m) => m.cmd === "accepted" && m.id === id);
    }
    await clock.tick(9_999);
    assert.equal(lines.length, 0, "not before S seconds");
    await clock.tick(1);
    assert.deepEqual(lines.pop(), [
      "2 waiting, 0 running, 0 schedulers",
      { waiting: 2, running: 0, schedulers: 0 },
    ]);

    await using scheduler = await WsPeer.open(url);
    await scheduler.register({ type: "scheduler", protocol: 2, slots: 1, name: "n1" });
    await scheduler.next((m) => m.cmd === "job" && m.id === "a");
    scheduler.send({ cmd: "event", id: "a", state: "started" });
    scheduler.send({ cmd: "event", id: "a", state: "succeeded", result: { code: 0 } });
    await producer.next(event("a", "succeeded"));
    await scheduler.next((m) => m.cmd === "job" && m.id === "b");
    await clock.tick(10_000);
    assert.deepEqual(lines.pop(), [
      "0 waiting, 1 running, 1 scheduler; finished: 1 succeeded",
      { waiting: 0, running: 1, schedulers: 1, finished_succeeded: 1 },
    ]);
    await clock.tick(10_000);
    assert.equal(lines.length, 0, "the same state and nothing finished: no line");
    assert.equal(summary.line(), "0 waiting, 1 running, 1 scheduler");
  } finally {
    summary.close();
  }
  assert.throws(() => new BusSummary(bus, { everyS: 0, log: () => {} }), RangeError);
});
