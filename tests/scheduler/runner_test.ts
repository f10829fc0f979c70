import assert from "node:assert/strict";
import { Runner, type RunnerOptions } from "../../scheduler/runner.ts";
import { JOB_STATES, type JobEvent } from "../../scheduler/job.ts";
import { DuplicateJobIdError, RunnerClosedError } from "../../scheduler/errors.ts";
import { FakeClock } from "../fake_clock.ts";
import { FakeLauncher, type FakeLauncherOptions } from "./fake_launcher.ts";

interface Setup extends AsyncDisposable {
  clock: FakeClock;
  fake: FakeLauncher;
  runner: Runner<string>;
  /** "id:state" per event, in dispatch order. */
  log: string[];
  events: JobEvent<string>[];
}

function setup(
  options: Partial<RunnerOptions<string>> = {},
  fakeOptions: FakeLauncherOptions = {},
): Setup {
  const clock = new FakeClock();
  const fake = new FakeLauncher(fakeOptions);
  const runner = new Runner<string>({ launch: fake.launch, clock, timeoutMs: 60_000, ...options });
  const log: string[] = [];
  const events: JobEvent<string>[] = [];
  for (const state of JOB_STATES) {
    runner.addEventListener(state, (event) => {
      log.push(`${event.job.id}:${event.type}`);
      events.push(event);
    });
  }
  return {
    clock,
    fake,
    runner,
    log,
    events,
    [Symbol.asyncDispose]: async (): Promise<void> => void await runner.close(),
  };
}

/** Submits jobs "id:priority" in order. */
function submit(runner: Runner<string>, ...specs: string[]): void {
  for (const spec of specs) {
    const [id = "", priority] = spec.split(":");
    runner.submit(id, { id, priority: Number(priority) });
  }
}

function runningIds(runner: Runner<string>): string[] {
  return runner.snapshot().running.map((j) => j.id).sort();
}

function waitingIds(runner: Runner<string>): string[] {
  return runner.snapshot().waiting.map((j) => j.id);
}

Deno.test("Runner starts jobs while slots are free, then queues them", async () => {
  await using t = setup({ slots: 2 });
  submit(t.runner, "a:5", "b:5", "c:5");
  assert.deepEqual(runningIds(t.runner), ["a", "b"]);
  assert.deepEqual(waitingIds(t.runner), ["c"]);
  assert.equal(t.runner.running, 2);
  assert.equal(t.runner.waiting, 1);
});

Deno.test("Runner starts waiting jobs most urgent first, first come first served among equals", async () => {
  await using t = setup({ slots: 1 });
  submit(t.runner, "run:0", "a:6", "b:3", "c:6", "d:3");
  assert.deepEqual(waitingIds(t.runner), ["b", "d", "a", "c"]);
  for (const id of ["run", "b", "d", "a"]) {
    t.fake.last(id).succeed();
    await t.clock.tick(0);
  }
  assert.deepEqual(t.fake.launched.map((j) => j.id), ["run", "b", "d", "a", "c"]);
});

Deno.test("Runner evicts the least urgent, most recently started job", async () => {
  await using t = setup({ slots: 3 });
  submit(t.runner, "a:7", "b:7", "c:2");
  await t.clock.tick(10);
  submit(t.runner, "x:1");
  assert.deepEqual(t.fake.last("b").calls, ["terminate"]);
  assert.deepEqual(t.fake.last("a").calls, []);
  assert.deepEqual(runningIds(t.runner), ["a", "c", "x"]);
  assert.equal(t.runner.get("b")?.reason, "evicted by x");
});

Deno.test("Runner evicts only for a strictly more urgent job", async () => {
  await using t = setup({ slots: 1 });
  submit(t.runner, "a:4", "b:4");
  assert.deepEqual(runningIds(t.runner), ["a"]);
  assert.deepEqual(waitingIds(t.runner), ["b"]);
  assert.deepEqual(t.fake.last("a").calls, []);
});

Deno.test("Runner requeue mode keeps the evicted job's place by original submission", async () => {
  await using t = setup({ slots: 1 });
  submit(t.runner, "a:5", "b:5", "c:1");
  assert.deepEqual(t.log, [
    "a:queued",
    "a:started",
    "b:queued",
    "c:queued",
    "a:requeued",
    "c:started",
  ]);
  assert.deepEqual(waitingIds(t.runner), ["a", "b"]);
  await t.clock.tick(0);
  t.fake.last("c").succeed();
  await t.clock.tick(0);
  const a = t.runner.get("a")!;
  assert.equal(a.state, "started");
  assert.equal(a.attempts, 2);
  assert.equal(t.fake.last("a").attempt, 2);
});

Deno.test("Runner kill mode makes eviction final", async () => {
  await using t = setup({ slots: 1, evict: "kill" });
  const a = t.runner.submit("a", { id: "a", priority: 5 });
  await t.clock.tick(25);
  submit(t.runner, "c:1");
  const outcome = await a.done;
  assert.equal(outcome.state, "evicted");
  assert.equal(outcome.reason, "evicted by c");
  assert.equal(outcome.runMs, 25);
  assert.equal(outcome.code, null);
  assert.deepEqual(t.fake.last("a").calls, ["terminate"]);
  t.fake.last("c").succeed();
  await t.runner.onIdle();
  assert.equal(t.fake.launched.length, 2);
});

Deno.test("Runner suspend mode suspends, resumes, and stops the timeout clock meanwhile", async () => {
  await using t = setup({ slots: 1, evict: "suspend", timeoutMs: 100 });
  const a = t.runner.submit("a", { id: "a", priority: 5 });
  await t.clock.tick(40);
  t.runner.submit("c", { id: "c", priority: 1, timeoutMs: 10_000 });
  assert.equal(a.state, "suspended");
  assert.deepEqual(t.fake.last("a").calls, ["suspend"]);
  assert.deepEqual(waitingIds(t.runner), ["a"]);
  await t.clock.tick(1000); // a's timeout would have passed, had it kept counting
  assert.equal(a.state, "suspended");
  t.fake.last("c").succeed();
  await t.clock.tick(0);
  assert.equal(a.state, "resumed");
  assert.deepEqual(t.fake.last("a").calls, ["suspend", "resume"]);
  assert.equal(t.fake.launched.length, 2); // resumed, not relaunched
  await t.clock.tick(59);
  assert.equal(a.state, "resumed");
  await t.clock.tick(1);
  const outcome = await a.done;
  assert.equal(outcome.state, "timed_out");
  assert.equal(outcome.runMs, 100);
  assert.equal(outcome.waitMs, 1000);
  assert.deepEqual(t.fake.last("a").calls, ["suspend", "resume", "terminate"]);
  assert.deepEqual(t.log.filter((l) => l.startsWith("a:")), [
    "a:queued",
    "a:started",
    "a:suspended",
    "a:resumed",
    "a:timed_out",
  ]);
});

Deno.test("Runner never evicts a job that is not preemptible", async () => {
  await using t = setup({ slots: 2 });
  t.runner.submit("a", { id: "a", priority: 9, preemptible: false });
  submit(t.runner, "b:6", "c:1");
  assert.deepEqual(t.fake.last("b").calls, ["terminate"]);
  submit(t.runner, "d:5"); // more urgent than a, but a is protected
  assert.deepEqual(t.fake.last("a").calls, []);
  assert.deepEqual(waitingIds(t.runner), ["d", "b"]);
});

Deno.test("Runner waits minRunMs before evicting, re-evaluating on a timer", async () => {
  await using t = setup({ slots: 1, minRunMs: 100 });
  submit(t.runner, "a:5");
  await t.clock.tick(30);
  submit(t.runner, "c:1");
  assert.deepEqual(waitingIds(t.runner), ["c"]);
  assert.equal(t.clock.pendingTimers, 2); // a's deadline and the re-evaluation
  await t.clock.tick(69);
  assert.deepEqual(runningIds(t.runner), ["a"]);
  await t.clock.tick(1);
  assert.deepEqual(runningIds(t.runner), ["c"]);
  assert.equal(t.runner.get("a")?.state, "requeued");
  // the new job itself has run 0 ms: a more urgent one must wait again
  submit(t.runner, "d:0");
  assert.deepEqual(runningIds(t.runner), ["c"]);
  await t.clock.tick(100);
  assert.deepEqual(runningIds(t.runner), ["d"]);
});

Deno.test("Runner aging moves long-waiting jobs ahead without re-keying", async () => {
  await using t = setup({ slots: 1, agingMs: 1000 });
  t.runner.submit("x", { id: "x", priority: 0, preemptible: false });
  submit(t.runner, "old:9");
  await t.clock.tick(5000);
  submit(t.runner, "mid:5", "hot:2"); // keys: old 9000, mid 10000, hot 7000
  assert.equal(t.runner.get("old")?.effectivePriority, 4);
  assert.deepEqual(waitingIds(t.runner), ["hot", "old", "mid"]);
  await t.clock.tick(20_000);
  assert.equal(t.runner.get("old")?.effectivePriority, 0); // floored at 0
  assert.equal(t.runner.get("mid")?.effectivePriority, 0);
  t.fake.last("x").succeed();
  await t.clock.tick(0);
  assert.deepEqual(runningIds(t.runner), ["hot"]);
});

Deno.test("Runner aging never evicts, and protects the level a job started at", async () => {
  await using t = setup({ slots: 1, agingMs: 100 });
  submit(t.runner, "a:5", "old:9");
  await t.clock.tick(10_000);
  assert.equal(t.runner.get("old")?.effectivePriority, 0);
  assert.deepEqual(runningIds(t.runner), ["a"]); // an aged level does not evict
  t.fake.last("a").succeed();
  await t.clock.tick(0);
  const old = t.runner.get("old")!;
  assert.equal(old.state, "started");
  assert.equal(old.effectivePriority, 0);
  submit(t.runner, "b:1");
  assert.equal(old.state, "started"); // started at level 0: b (1) is not more urgent
  assert.deepEqual(waitingIds(t.runner), ["b"]);
});

Deno.test("Runner aging: a more urgent waiting job behind an aged one can still evict", async () => {
  await using t = setup({ slots: 1, agingMs: 100, minRunMs: 50 });
  submit(t.runner, "old:9");
  await t.clock.tick(10_000);
  submit(t.runner, "a:5");
  assert.deepEqual(runningIds(t.runner), ["a"]); // old started at level 9: a evicts it
  await t.clock.tick(10);
  submit(t.runner, "b:1"); // behind old (aged to 0) in the queue, but its own priority evicts
  assert.deepEqual(waitingIds(t.runner), ["old", "b"]);
  await t.clock.tick(40);
  assert.deepEqual(runningIds(t.runner), ["b"]);
  assert.deepEqual(waitingIds(t.runner), ["old", "a"]);
});

Deno.test("Runner cancels waiting and running jobs", async () => {
  await using t = setup({ slots: 1 });
  submit(t.runner, "a:5", "b:5", "c:5");
  assert.equal(t.runner.cancel("b", "no longer needed"), true);
  assert.equal(t.runner.cancel("b"), false);
  assert.equal(t.runner.cancel("nope"), false);
  const a = t.runner.get("a")!;
  assert.equal(t.runner.cancel("a"), true);
  assert.equal((await a.done).state, "cancelled");
  assert.deepEqual(t.fake.last("a").calls, ["terminate"]);
  assert.deepEqual(runningIds(t.runner), ["c"]);
  assert.deepEqual(
    t.events.filter((e) => e.type === "cancelled").map((e) => [e.job.id, e.previous]),
    [["b", "queued"], ["a", "started"]],
  );
  assert.equal(t.events.find((e) => e.type === "cancelled")?.job.reason, "no longer needed");
});

Deno.test("Runner cancels a job when its signal aborts", async () => {
  await using t = setup({ slots: 1 });
  const controller = new AbortController();
  submit(t.runner, "a:5");
  const b = t.runner.submit("b", { id: "b", signal: controller.signal });
  controller.abort(new Error("user gave up"));
  const outcome = await b.done;
  assert.equal(outcome.state, "cancelled");
  assert.equal(outcome.reason, "user gave up");
  const c = t.runner.submit("c", { signal: AbortSignal.abort(new Error("too late")) });
  assert.equal(c.state, "cancelled");
});

Deno.test("Runner.setPriority moves a waiting job and may evict; a running job may be evicted", async () => {
  await using t = setup({ slots: 1 });
  submit(t.runner, "a:5", "b:6", "c:8");
  assert.equal(t.runner.setPriority("c", 6), true);
  assert.deepEqual(waitingIds(t.runner), ["b", "c"]); // c keeps its place among equals
  assert.equal(t.runner.setPriority("c", 3), true);
  assert.deepEqual(runningIds(t.runner), ["c"]); // 3 is more urgent than a's 5
  assert.equal(t.runner.setPriority("c", 9), true);
  assert.deepEqual(runningIds(t.runner), ["a"]); // c now less urgent than waiting a
  assert.equal(t.runner.setPriority("zzz", 1), false);
  assert.throws(() => t.runner.setPriority("a", 11), RangeError);
  assert.throws(() => t.runner.setPriority("a", 1.5), /integer 0\.\.10, got 1.5/);
});

Deno.test("Runner times jobs out: runner default and per-job override", async () => {
  await using t = setup({ slots: 2, timeoutMs: 100 });
  const a = t.runner.submit("a", { id: "a" });
  const b = t.runner.submit("b", { id: "b", timeoutMs: 30 });
  await t.clock.tick(30);
  assert.equal(b.state, "timed_out");
  assert.equal(a.state, "started");
  await t.clock.tick(70);
  const outcome = await a.done;
  assert.equal(outcome.state, "timed_out");
  assert.equal(outcome.runMs, 100);
  assert.deepEqual(t.fake.last("a").calls, ["terminate"]);
  assert.equal(t.clock.pendingTimers, 0);
});

Deno.test("Runner maps launcher outcomes and launcher errors", async () => {
  await using t = setup({ slots: 5 });
  submit(t.runner, "ok:5", "bad:5", "late:5", "killed:5");
  const views = ["ok", "bad", "late", "killed"].map((id) => t.runner.get(id)!);
  t.fake.last("ok").succeed();
  t.fake.last("bad").finish("error", 3);
  t.fake.last("late").finish("timeout", null);
  t.fake.last("killed").finish("terminated", null);
  t.fake.throwNext = new Error("no such command");
  const broken = t.runner.submit("broken", { id: "broken" });
  const outcomes = await Promise.all([...views, broken].map((v) => v.done));
  assert.deepEqual(outcomes.map((o) => [o.id, o.state, o.reason, o.code]), [
    ["ok", "succeeded", undefined, 0],
    ["bad", "failed", "exit code 3", 3],
    ["late", "timed_out", "the launcher timed out", null],
    ["killed", "failed", "terminated", null],
    ["broken", "failed", "no such command", null],
  ]);
  assert.equal(outcomes[4]?.attempts, 1);
});

Deno.test("Runner.close hands back running, suspended and waiting jobs", async () => {
  const t = setup({ slots: 1, evict: "suspend" });
  submit(t.runner, "a:5", "b:1", "c:7");
  assert.deepEqual(waitingIds(t.runner), ["a", "c"]);
  const closing = t.runner.close();
  assert.equal(t.runner.close(), closing);
  assert.throws(() => t.runner.submit("d"), RunnerClosedError);
  const left = await closing;
  assert.deepEqual(left.map((j) => j.id), ["b", "a", "c"]);
  for (const job of left) {
    const outcome = await job.done;
    assert.equal(outcome.state, "cancelled");
    assert.equal(outcome.reason, "runner closed");
  }
  assert.deepEqual(t.fake.last("a").calls, ["suspend", "resume", "terminate"]);
  assert.deepEqual(t.fake.last("b").calls, ["terminate"]);
  assert.equal(t.runner.running + t.runner.waiting, 0);
  assert.equal(t.clock.pendingTimers, 0);
  await t.runner[Symbol.asyncDispose]();
});

Deno.test("Runner.close waits for terminated processes before settling", async () => {
  const t = setup({ slots: 1 }, { holdTerminate: true });
  const a = t.runner.submit("a", { id: "a" });
  let settled = false;
  const closing = t.runner.close().then((left) => {
    settled = true;
    return left;
  });
  await t.clock.tick(0);
  assert.equal(a.state, "cancelled");
  assert.equal(settled, false);
  t.fake.last("a").finish("terminated", null);
  assert.deepEqual((await closing).map((j) => j.id), ["a"]);
});

Deno.test("Runner relaunches a requeued job only after its previous process ended", async () => {
  await using t = setup({ slots: 1 }, { holdTerminate: true });
  submit(t.runner, "a:5", "c:1");
  t.runner.cancel("c"); // a gets the slot back while its first process is still terminating
  await t.clock.tick(0);
  const a = t.runner.get("a")!;
  assert.equal(a.state, "started");
  assert.equal(t.fake.launched.length, 2); // a, c
  t.fake.last("a").finish("terminated", null);
  t.fake.last("c").finish("terminated", null);
  await t.clock.tick(0);
  assert.equal(t.fake.launched.length, 3);
  assert.equal(t.fake.last("a").attempt, 2);
  t.fake.last("a").succeed();
  assert.equal((await a.done).state, "succeeded");
});

Deno.test("Runner rejects bad options and priorities, naming them", () => {
  const launch = new FakeLauncher().launch;
  const bad: Array<[Partial<RunnerOptions<string>>, RegExp]> = [
    [{ slots: 0 }, /'slots' must be a positive integer, got 0/],
    [{ slots: 1.5 }, /'slots'.*got 1.5/],
    [{ evict: "drop" as "kill" }, /'evict' must be one of requeue, kill, suspend, got drop/],
    [{ minRunMs: -1 }, /'minRunMs'.*got -1/],
    [{ agingMs: Infinity }, /'agingMs'.*got Infinity/],
    [{ timeoutMs: 0 }, /'timeoutMs' must be a finite number > 0, got 0/],
  ];
  for (const [options, message] of bad) {
    assert.throws(() => new Runner<string>({ launch, ...options }), message);
  }
  assert.throws(
    () => new Runner<string>({} as RunnerOptions<string>),
    /'launch' must be a function, got undefined/,
  );
  assert.throws(
    () => new Runner<string>({ launch, clock: {} as FakeClock }),
    TypeError,
  );
  const runner = new Runner<string>({ launch, clock: new FakeClock() });
  assert.throws(() => runner.submit("x", { priority: 11 }), /integer 0\.\.10, got 11/);
  assert.throws(() => runner.submit("x", { priority: -1 }), RangeError);
  assert.throws(() => runner.submit("x", { timeoutMs: -5 }), /'timeoutMs'.*got -5/);
  assert.throws(() => runner.submit("x", { id: "" }), TypeError);
  assert.equal(runner.running + runner.waiting, 0);
});

Deno.test("Runner refuses a duplicate id of an unfinished job, generates unique ids", async () => {
  await using t = setup({ slots: 1 });
  submit(t.runner, "a:5");
  assert.throws(() => t.runner.submit("again", { id: "a" }), DuplicateJobIdError);
  t.runner.submit("x", { id: "job-2" });
  const generated = t.runner.submit("y");
  assert.equal(generated.id, "job-2-1");
  t.fake.last("a").succeed();
  await t.clock.tick(0);
  assert.equal(t.runner.submit("again", { id: "a" }).id, "a"); // a is final: id free again
});

Deno.test("Runner dispatches each state change once, in order, with figures and previous state", async () => {
  await using t = setup({ slots: 1 });
  submit(t.runner, "a:5", "b:5", "c:1");
  t.fake.last("c").succeed();
  await t.clock.tick(0);
  t.fake.last("a").succeed();
  await t.clock.tick(0);
  t.fake.last("b").finish("error", 2);
  await t.runner.onIdle();
  assert.deepEqual(
    t.events.map((e) => [e.job.id, e.type, e.previous, e.running, e.waiting]),
    [
      ["a", "queued", undefined, 0, 1],
      ["a", "started", "queued", 1, 0],
      ["b", "queued", undefined, 1, 1],
      ["c", "queued", undefined, 1, 2],
      ["a", "requeued", "started", 0, 2],
      ["c", "started", "queued", 1, 2],
      ["c", "succeeded", "started", 0, 2],
      ["a", "started", "requeued", 1, 1],
      ["a", "succeeded", "started", 0, 1],
      ["b", "started", "queued", 1, 0],
      ["b", "failed", "started", 0, 0],
    ],
  );
  const counts = t.runner.counts;
  assert.equal(counts.queued, 3);
  assert.equal(counts.started, 4);
  assert.equal(counts.requeued, 1);
  assert.equal(counts.succeeded, 2);
  assert.equal(counts.failed, 1);
  assert.equal(counts.cancelled, 0);
});

Deno.test("Runner marks startsAtOnce only on the queued event of a job a free slot takes at once", async () => {
  await using t = setup({ slots: 1 });
  submit(t.runner, "a:5", "b:5", "c:1"); // a takes the slot; b waits; c waits, then evicts a
  assert.deepEqual(
    t.events.filter((e) => e.startsAtOnce).map((e) => `${e.job.id}:${e.type}`),
    ["a:queued"],
  );
});

Deno.test("Runner dispatches consistently when a listener submits or cancels", async () => {
  await using t = setup({ slots: 1 });
  t.runner.addEventListener("started", (event) => {
    if (event.job.id === "a") t.runner.submit("b", { id: "b", priority: 0 });
  });
  t.runner.addEventListener("requeued", (event) => {
    assert.equal(t.runner.get("b")?.state, "started");
    t.runner.cancel(event.job.id);
  });
  submit(t.runner, "a:5");
  assert.deepEqual(t.log, [
    "a:queued",
    "a:started",
    "b:queued",
    "a:requeued",
    "b:started",
    "a:cancelled",
  ]);
});

Deno.test("Runner.snapshot lists running jobs and waiting jobs by priority", async () => {
  await using t = setup({ slots: 2 });
  submit(t.runner, "a:1", "b:2", "c:9", "d:4", "e:4");
  const snap = t.runner.snapshot();
  assert.equal(snap.slots, 2);
  assert.equal(snap.time, t.clock.now());
  assert.deepEqual(snap.running.map((j) => j.id), ["a", "b"]);
  assert.deepEqual(snap.waiting.map((j) => [j.id, j.priority]), [["d", 4], ["e", 4], ["c", 9]]);
});

Deno.test("Runner.onIdle settles once nothing runs, waits or terminates", async () => {
  await using t = setup({ slots: 1 });
  await t.runner.onIdle();
  submit(t.runner, "a:5", "b:5");
  let idle = false;
  const onIdle = t.runner.onIdle().then(() => idle = true);
  t.fake.last("a").succeed();
  await t.clock.tick(0);
  assert.equal(idle, false);
  t.fake.last("b").succeed();
  await onIdle;
  assert.equal(idle, true);
});
