import assert from "node:assert/strict";
import { Deadline } from "../../core/deadline.ts";
import { FakeClock } from "../fake_clock.ts";

Deno.test("Deadline expires once after its running time", async () => {
  const clock = new FakeClock();
  let calls = 0;
  const deadline = new Deadline(100, () => calls++, { clock });
  await clock.tick(99);
  assert.equal(calls, 0);
  assert.equal(deadline.remainingMs, 1);
  await clock.tick(1);
  assert.equal(calls, 1);
  assert.ok(deadline.expired);
  await clock.tick(1000);
  assert.equal(calls, 1);
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("Deadline does not count paused time", async () => {
  const clock = new FakeClock();
  let calls = 0;
  const deadline = new Deadline(100, () => calls++, { clock });
  await clock.tick(40);
  deadline.pause();
  assert.ok(deadline.paused);
  await clock.tick(500);
  assert.equal(calls, 0);
  assert.equal(deadline.elapsedMs, 40);
  deadline.resume();
  await clock.tick(59);
  assert.equal(calls, 0);
  await clock.tick(1);
  assert.equal(calls, 1);
});

Deno.test("Deadline cancel prevents expiry and clears its timer", async () => {
  const clock = new FakeClock();
  let calls = 0;
  const deadline = new Deadline(10, () => calls++, { clock });
  deadline.cancel();
  deadline.cancel();
  deadline.resume();
  assert.equal(clock.pendingTimers, 0);
  await clock.tick(100);
  assert.equal(calls, 0);
});

Deno.test("Deadline pause and resume are no-ops in the wrong state", async () => {
  const clock = new FakeClock();
  let calls = 0;
  const deadline = new Deadline(10, () => calls++, { clock });
  deadline.resume(); // running already
  deadline.pause();
  deadline.pause();
  await clock.tick(20);
  assert.equal(calls, 0);
  deadline.resume();
  await clock.tick(10);
  assert.equal(calls, 1);
  deadline.pause(); // expired already
  assert.ok(deadline.expired);
});

Deno.test("Deadline rejects a negative or infinite timeout", () => {
  assert.throws(() => new Deadline(-1, () => {}), RangeError);
  assert.throws(() => new Deadline(Infinity, () => {}), /'timeoutMs' must be a finite number/);
});

Deno.test("Deadline with the system clock fires for real", async () => {
  const { promise, resolve } = Promise.withResolvers<void>();
  using _deadline = new Deadline(5, resolve);
  await promise;
});
