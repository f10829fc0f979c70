import assert from "node:assert/strict";
import { sleep } from "../../core/sleep.ts";
import { ShutdownSignal } from "../../process/mod.ts";

Deno.test("ShutdownSignal aborts on SIGTERM and says which signal came", async () => {
  using shutdown = new ShutdownSignal();
  assert.equal(shutdown.signal.aborted, false);
  Deno.kill(Deno.pid, "SIGTERM");
  await shutdown.wait();
  assert.equal(shutdown.received, "SIGTERM");
  assert.equal(shutdown.signal.aborted, true);
  await shutdown.wait(); // resolves at once when already aborted
});

Deno.test("ShutdownSignal keeps the first of several signals", async () => {
  using shutdown = new ShutdownSignal({ signals: ["SIGUSR2", "SIGUSR1"] });
  Deno.kill(Deno.pid, "SIGUSR1");
  await shutdown.wait();
  Deno.kill(Deno.pid, "SIGUSR2");
  await sleep(20);
  assert.equal(shutdown.received, "SIGUSR1");
});

Deno.test("ShutdownSignal also follows a given signal, and disposes idempotently", async () => {
  const controller = new AbortController();
  const shutdown = new ShutdownSignal({ signal: controller.signal });
  controller.abort();
  await shutdown.wait();
  assert.equal(shutdown.received, undefined);
  shutdown[Symbol.dispose]();
  shutdown[Symbol.dispose]();
});

Deno.test("sleep resolves after its time, or at once when aborted", async () => {
  const start = Date.now();
  await sleep(30);
  assert.ok(Date.now() - start >= 25);
  const controller = new AbortController();
  const slept = sleep(60_000, controller.signal);
  controller.abort();
  await slept; // no timer left behind: the sanitizer would fail the test
  await sleep(60_000, AbortSignal.abort());
});
