import assert from "node:assert/strict";
import { isGone, waitUntil } from "./proc_os.ts";
import { startParent } from "./parent_harness.ts";

Deno.test("lifeline: Proc.deno jobs exit by themselves when their parent is SIGKILLed", async () => {
  const parent = await startParent("lifeline");
  assert.ok(parent.jobs.every((pid) => !isGone(pid)));
  Deno.kill(parent.pid, "SIGKILL");
  const killedAt = Date.now();
  assert.equal((await parent.status).signal, "SIGKILL");
  // The lifeline polls every 200 ms; the bound is wide for a busy machine.
  assert.ok(await waitUntil(() => parent.jobs.every(isGone), 3000), "orphaned jobs kept running");
  assert.ok(Date.now() - killedAt < 3000);
});
