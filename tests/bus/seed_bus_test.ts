import assert from "node:assert/strict";
import { SchedulerClient } from "../../bus/scheduler_client.ts";
import type { JobPayload } from "../../bus/protocol.ts";
import { Producer } from "../../producer/producer.ts";
import { ProducerStateError } from "../../producer/errors.ts";
import type { Runner } from "../../scheduler/runner.ts";
import { FakeLauncher } from "../scheduler/fake_launcher.ts";
import { SeedBus } from "../fixtures/seed_bus.ts";

/** Resolves with the next event of `type` on `target`. */
function next(target: EventTarget, type: string): Promise<Event> {
  return new Promise((resolve) => target.addEventListener(type, resolve, { once: true }));
}

/** Resolves once the runner has dispatched `count` events of `type`. */
function runnerEvents(
  runner: Runner<JobPayload>,
  type: "started" | "succeeded",
  count: number,
): Promise<void> {
  let seen = 0;
  return new Promise<void>((resolve) => {
    const onEvent = (): void => {
      if (++seen < count) return;
      runner.removeEventListener(type, onEvent);
      resolve();
    };
    runner.addEventListener(type, onEvent);
  });
}

Deno.test("Producer and SchedulerClient fall back to the seed's protocol on the seed's bus: the jobs run", async () => {
  await using bus = new SeedBus();
  const fake = new FakeLauncher();
  const scheduler = new SchedulerClient(bus.url, { slots: 2, launch: fake.launch, name: "s" });
  const runner = scheduler.runner;
  const schedulerFound = next(scheduler.bus, "seedbus");
  scheduler.start();
  await bus.until(() => bus.received.some((m) => m.type === "scheduler"));

  const producer = new Producer(bus.url, { name: "p", seedBusAfterMs: 50 });
  const producerFound = next(producer.client, "seedbus");
  const started = runnerEvents(runner, "started", 2);
  producer.start();
  producer.submit({ priority: 3, runtime: 2 });
  producer.submit({ priority: 1, runtime: 4, tag: "x" });
  assert.match(String((await producerFound as { reason?: string }).reason), /no 'registered'/);
  await producer.onSettled();
  assert.deepEqual(producer.summary.outcomes, { sent: 2 });
  await assert.rejects(producer.cancel("p-1"), ProducerStateError);

  await started;
  assert.match(String((await schedulerFound as { reason?: string }).reason), /bare payload/);
  assert.equal(scheduler.bus.seedBus, true);
  assert.deepEqual(fake.live(), ["seed-1", "seed-2"]);
  assert.deepEqual(runner.get("seed-2")?.payload, { priority: 1, runtime: 4, tag: "x" });
  const succeeded = runnerEvents(runner, "succeeded", 2);
  fake.last("seed-1").succeed();
  fake.last("seed-2").succeed();
  await succeeded;
  await producer.close();
  await scheduler.close();

  // What the seed's bus got: registrations and seed job requests; no event, no drain.
  assert.deepEqual(bus.received.map((m) => m.cmd), [
    "register",
    "register",
    "job_request",
    "job_request",
  ]);
  assert.deepEqual(bus.received.slice(2), [
    { cmd: "job_request", payload: { priority: 3, runtime: 2 } },
    { cmd: "job_request", payload: { priority: 1, runtime: 4, tag: "x" } },
  ]);
});
