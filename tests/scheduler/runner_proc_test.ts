// End-to-end: the runner with real child processes (Deno children, sub-second, wide bounds).
import assert from "node:assert/strict";
import { Runner } from "../../scheduler/runner.ts";
import { procLauncher, type ProcPayload } from "../../scheduler/proc_launcher.ts";

/** A Deno child running `code`. */
function deno(code: string): ProcPayload {
  return { command: Deno.execPath(), args: ["eval", code] };
}

const launch = procLauncher({ output: "null", graceMs: 2000 });

Deno.test({
  name: "Runner with procLauncher reports success, exit codes and spawn errors",
  fn: async () => {
    await using runner = new Runner<ProcPayload>({ launch, slots: 2 });
    const ok = runner.submit(deno("Deno.exit(0)"));
    const bad = runner.submit(deno("Deno.exit(3)"));
    const missing = runner.submit({ command: "/nonexistent/command" });
    const [o1, o2, o3] = await Promise.all([ok.done, bad.done, missing.done]);
    assert.equal(o1.state, "succeeded");
    assert.deepEqual([o2.state, o2.code, o2.reason], ["failed", 3, "exit code 3"]);
    assert.equal(o3.state, "failed");
    assert.match(o3.reason ?? "", /nonexistent/);
  },
});

Deno.test({
  name: "Runner terminates a real process past its timeout and on eviction (kill mode)",
  fn: async () => {
    await using runner = new Runner<ProcPayload>({ launch, slots: 1, evict: "kill" });
    const forever = deno("setInterval(() => {}, 1000)");
    const slow = runner.submit(forever, { priority: 5, timeoutMs: 300 });
    const slowOutcome = await slow.done;
    assert.equal(slowOutcome.state, "timed_out");
    assert.ok(slowOutcome.runMs >= 300 && slowOutcome.runMs < 5000, `${slowOutcome.runMs}`);

    const victim = runner.submit(forever, { priority: 5 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const urgent = runner.submit(deno("Deno.exit(0)"), { priority: 0 });
    const outcome = await victim.done; // settles once the process has ended
    assert.equal(outcome.state, "evicted");
    assert.equal(outcome.code, null); // killed by SIGTERM
    assert.equal((await urgent.done).state, "succeeded");
  },
});

Deno.test({
  name: "Runner.close terminates running processes and hands back every unfinished job",
  fn: async () => {
    const runner = new Runner<ProcPayload>({ launch, slots: 1 });
    const forever = deno("setInterval(() => {}, 1000)");
    runner.submit(forever, { id: "running" });
    runner.submit(forever, { id: "waiting" });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const left = await runner.close();
    assert.deepEqual(left.map((job) => [job.id, job.state]), [
      ["running", "cancelled"],
      ["waiting", "cancelled"],
    ]);
    assert.equal(runner.running, 0);
  },
});
