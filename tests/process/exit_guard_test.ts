import assert from "node:assert/strict";
import { isGone, waitUntil } from "./proc_os.ts";
import { startParent } from "./parent_harness.ts";

Deno.test("exit guard: SIGTERM to a parent with live jobs ends them, then exits 143", async () => {
  const parent = await startParent("guard");
  assert.equal(parent.jobs.length, 2);
  assert.ok(parent.jobs.every((pid) => !isGone(pid)));
  Deno.kill(parent.pid, "SIGTERM");
  const status = await parent.status;
  assert.equal(status.code, 143);
  assert.ok(parent.jobs.every(isGone), "every job was gone before the parent exited");
});

Deno.test("exit guard: Deno.exit in a parent kills its live jobs (unload)", async () => {
  const parent = await startParent("unload");
  const status = await parent.status;
  assert.equal(status.code, 0);
  assert.ok(await waitUntil(() => parent.jobs.every(isGone), 2000), "jobs left running");
});

Deno.test("exit guard: setSignalGuard(false) leaves SIGTERM to the program", async () => {
  const parent = await startParent("self");
  Deno.kill(parent.pid, "SIGTERM");
  const status = await parent.status;
  assert.equal(status.code, 0, "the program's own handler drained and exited 0");
  assert.ok(parent.jobs.every(isGone));
});

Deno.test("exit guard: a held signal neither ends the program nor its jobs", async () => {
  const parent = await startParent("held");
  Deno.kill(parent.pid, "SIGTERM"); // held: a repeat of the shutdown signal the program handles
  Deno.kill(parent.pid, "SIGUSR1"); // the program's own way out
  const status = await parent.status;
  assert.equal(status.code, 0, "the guard did not exit 143 on the held SIGTERM");
  assert.ok(parent.jobs.every(isGone));
});
