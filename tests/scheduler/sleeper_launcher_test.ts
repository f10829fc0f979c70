// End-to-end: the runner with real sleeper processes (sub-second runtimes, wide bounds).
import assert from "node:assert/strict";
import { Runner } from "../../scheduler/runner.ts";
import { sleeperLauncher, type SleeperPayload } from "../../scheduler/sleeper_launcher.ts";
import { JOB_STATES, type JobEvent, type JobState } from "../../scheduler/job.ts";

const launch = sleeperLauncher({ output: "null" });

/** Resolves once job `id` has entered `state`. */
function reached(runner: Runner<SleeperPayload>, id: string, state: JobState): Promise<void> {
  return new Promise((resolve) => {
    const listener = (event: JobEvent<SleeperPayload>): void => {
      if (event.job.id !== id) return;
      runner.removeEventListener(state, listener);
      resolve();
    };
    runner.addEventListener(state, listener);
  });
}

Deno.test("sleeperLauncher runs the sleeper for its runtime", async () => {
  await using runner = new Runner<SleeperPayload>({ launch });
  const outcome = await runner.submit({ runtime: 0.2 }).done;
  assert.equal(outcome.state, "succeeded");
  assert.equal(outcome.code, 0);
  assert.ok(outcome.runMs >= 200 && outcome.runMs < 10_000, `${outcome.runMs}`);
});

Deno.test("sleeperLauncher fails a job whose runtime is not a number >= 0", async () => {
  await using runner = new Runner<SleeperPayload>({ launch });
  const outcome = await runner.submit({ runtime: -1 }).done;
  assert.equal(outcome.state, "failed");
  assert.match(outcome.reason ?? "", /'runtime' must be a finite number >= 0, got -1/);
});

Deno.test("Runner suspends and resumes a real sleeper (suspend mode)", async () => {
  await using runner = new Runner<SleeperPayload>({ launch, slots: 1, evict: "suspend" });
  const log: string[] = [];
  for (const state of JOB_STATES) {
    runner.addEventListener(state, (event) => log.push(`${event.job.id}:${event.type}`));
  }
  const started = reached(runner, "slow", "started");
  const slow = runner.submit({ runtime: 0.4 }, { id: "slow", priority: 5 });
  await started; // spawned: its end cannot be seen before the next turn of the event loop
  const urgent = runner.submit({ runtime: 0.1 }, { id: "urgent", priority: 0 });
  const [s, u] = await Promise.all([slow.done, urgent.done]);
  assert.equal(u.state, "succeeded");
  assert.equal(s.state, "succeeded");
  assert.equal(s.attempts, 1); // resumed, not relaunched
  assert.deepEqual(log.filter((line) => line.startsWith("slow:")), [
    "slow:queued",
    "slow:started",
    "slow:suspended",
    "slow:resumed",
    "slow:succeeded",
  ]);
});

Deno.test("Runner requeues a real sleeper and relaunches it after its process ended", async () => {
  await using runner = new Runner<SleeperPayload>({ launch, slots: 1 });
  const started = reached(runner, "slow", "started");
  const slow = runner.submit({ runtime: 0.2 }, { id: "slow", priority: 5 });
  const requeued = reached(runner, "slow", "requeued");
  await started; // spawned: its end cannot be seen before the next turn of the event loop
  const urgent = runner.submit({ runtime: 0.05 }, { id: "urgent", priority: 1 });
  await requeued;
  const [s, u] = await Promise.all([slow.done, urgent.done]);
  assert.equal(u.state, "succeeded");
  assert.equal(s.state, "succeeded");
  assert.equal(s.attempts, 2);
});
