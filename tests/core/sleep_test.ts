import assert from "node:assert/strict";
import { sleep } from "../../core/sleep.ts";
import { FakeClock } from "../fake_clock.ts";

Deno.test("sleep on an injected clock ends when that clock's time has come, not before", async () => {
  const clock = new FakeClock();
  let done = false;
  const slept = sleep(1000, undefined, { clock }).then(() => done = true);
  await clock.tick(999);
  assert.equal(done, false);
  await clock.tick(1);
  await slept;
  assert.equal(done, true);
});

Deno.test("sleep on an injected clock ends at once on abort and leaves no timer", async () => {
  const clock = new FakeClock();
  const controller = new AbortController();
  const slept = sleep(60_000, controller.signal, { clock });
  controller.abort();
  await slept;
  assert.equal(clock.pendingTimers, 0);
});
