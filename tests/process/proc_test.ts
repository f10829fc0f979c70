import assert from "node:assert/strict";
import {
  CantStartError,
  type DenoProcOptions,
  liveProcCount,
  NotRunningError,
  Proc,
  type ProcOptions,
  type ProcOutcome,
  ProcSpawnError,
  ProcStateError,
} from "../../process/mod.ts";
import { FakeClock, flush } from "../fake_clock.ts";
import { groupMembers, isGone, waitUntil } from "./proc_os.ts";

const CHILD = new URL("../fixtures/proc_child.ts", import.meta.url);

/** A Deno child running the fixture in `mode`. */
function child(args: string[], options: DenoProcOptions = {}): Proc {
  return Proc.deno(CHILD, { output: "null", ...options, args });
}

/** A child that ignores SIGTERM, started and ready (its SIGTERM listener is installed). */
async function startIgnoringTerm(options: ProcOptions = {}, timeoutMs?: number): Promise<Proc> {
  const dir = await Deno.makeTempDir();
  const marker = `${dir}/ready`;
  try {
    const proc = child(["ignore-term", marker], {
      ...options,
      permissions: [`--allow-write=${dir}`],
    }).start({ timeoutMs });
    const ready = await waitUntil(() => {
      try {
        return Deno.statSync(marker).isFile;
      } catch {
        return false;
      }
    }, 10_000);
    assert.ok(ready, "the SIGTERM-ignoring child never got ready");
    return proc;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Whether the process is stopped (SIGSTOP). */
function isStopped(pid: number): boolean {
  const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return text.slice(text.lastIndexOf(")") + 2)[0] === "T";
}

Deno.test("Proc.deno runs a module without permissions to success, with pid and times", async () => {
  const proc = child(["exit", "0"]);
  assert.equal(proc.state, "created");
  assert.equal(proc.pid, undefined);
  assert.equal(proc.start(), proc);
  assert.equal(proc.state, "running");
  assert.equal(liveProcCount(), 1);
  const outcome = await proc.wait();
  assert.equal(outcome.result, "success");
  assert.equal(outcome.code, 0);
  assert.equal(outcome.signal, null);
  assert.equal(outcome.pid, proc.pid);
  assert.ok(outcome.endedAt >= outcome.startedAt);
  assert.equal(outcome.durationMs, outcome.endedAt - outcome.startedAt);
  assert.equal(outcome.stdout, undefined);
  assert.equal(proc.state, "ended");
  assert.equal(proc.outcome, outcome);
  assert.equal(liveProcCount(), 0);
});

Deno.test("Proc reports a non-zero exit as an error outcome, without rejecting", async () => {
  const outcome = await child(["exit", "3"]).start().wait();
  assert.equal(outcome.result, "error");
  assert.equal(outcome.code, 3);
});

Deno.test("Proc passes args, env and cwd to the executable", async () => {
  const proc = new Proc(Deno.execPath(), {
    args: ["run", "-q", "--allow-env", "--allow-read", CHILD.href, "env", "PROC_TEST_VAR"],
    env: { PROC_TEST_VAR: "hello" },
    cwd: "/",
    output: "capture",
  });
  const outcome = await proc.start().wait();
  assert.equal(outcome.stdout, "hello /\n");
});

Deno.test("Proc.deno grants only the permissions it is given", async () => {
  const denied = await child(["read", "/etc/hostname"], { output: "capture" }).start().wait();
  assert.equal(denied.result, "error");
  assert.match(denied.stderr ?? "", /read access/i);
  const granted = await child(["read", "/etc/hostname"], { permissions: ["--allow-read=/etc"] })
    .start().wait();
  assert.equal(granted.result, "success");
  assert.throws(() => Proc.deno(CHILD, { permissions: ["-A"] }), TypeError);
  assert.throws(() => Proc.deno(CHILD, { permissions: ["--deny-net"] }), /--allow-/);
});

Deno.test("Proc validates its options", () => {
  assert.throws(() => new Proc(""), TypeError);
  assert.throws(() => new Proc("x", { graceMs: -1 }), RangeError);
  assert.throws(() => new Proc("x", { maxOutputBytes: 0 }), RangeError);
  assert.throws(() => new Proc("x", { output: "pipe" as "null" }), TypeError);
  assert.throws(() => new Proc("x").start({ timeoutMs: -1 }), RangeError);
});

Deno.test("Proc.start throws ProcSpawnError naming a missing executable", () => {
  const proc = new Proc("/nonexistent/proc-test-missing");
  assert.throws(
    () => proc.start(),
    (error: unknown) =>
      error instanceof ProcSpawnError &&
      error.message.includes("proc-test-missing") &&
      error.cause instanceof Deno.errors.NotFound,
  );
  assert.equal(proc.state, "created");
  assert.equal(liveProcCount(), 0);
});

Deno.test("Proc state errors: start twice or after the end, wait/terminate/kill unstarted", async () => {
  const idle = new Proc(Deno.execPath());
  await assert.rejects(idle.wait(), NotRunningError);
  await assert.rejects(idle.terminate(), NotRunningError);
  await assert.rejects(idle.kill(), ProcStateError);
  const proc = child(["exit", "0"]).start();
  assert.throws(() => proc.start(), CantStartError);
  await proc.wait();
  assert.throws(
    () => proc.start(),
    (e: unknown) => e instanceof ProcStateError && /ended/.test(`${e}`),
  );
});

Deno.test("Proc.terminate leaves no grandchild of a shell job alive", async () => {
  const proc = new Proc("bash", { args: ["-c", "sleep 30 & sleep 30 & wait"] }).start();
  const pid = proc.pid!;
  assert.ok(await waitUntil(() => groupMembers(pid).length === 3, 5000), "grandchildren started");
  const members = groupMembers(pid);
  const outcome = await proc.terminate();
  assert.equal(outcome.result, "terminated");
  assert.equal(outcome.signal, "SIGTERM");
  assert.ok(await waitUntil(() => members.every(isGone), 2000), `left: ${groupMembers(pid)}`);
});

Deno.test("Proc leaves an exited leader's children alone until terminate is called", async () => {
  const proc = new Proc("bash", { args: ["-c", "sleep 30 & exit 0"], output: "null" }).start();
  const outcome = await proc.wait();
  assert.equal(outcome.result, "success");
  const leftovers = groupMembers(proc.pid!);
  assert.equal(leftovers.length, 1, "the background sleep outlived its shell");
  assert.equal(await proc.terminate(), outcome, "the outcome stays as it was");
  assert.ok(await waitUntil(() => leftovers.every(isGone), 2000));
});

Deno.test("Proc capture does not wait forever on a pipe held by a grandchild", async () => {
  const proc = new Proc("bash", { args: ["-c", "sleep 30 & echo hi"], output: "capture" });
  const outcome = await proc.start().wait();
  assert.equal(outcome.stdout, "hi\n");
  assert.equal(outcome.result, "success");
  await proc.kill();
  assert.ok(await waitUntil(() => groupMembers(proc.pid!).length === 0, 2000));
});

Deno.test("Proc.terminate sends SIGKILL after graceMs to a child that ignores SIGTERM", async () => {
  const proc = await startIgnoringTerm({ graceMs: 200 });
  const outcome = await proc.terminate();
  assert.equal(outcome.result, "terminated");
  assert.equal(outcome.signal, "SIGKILL");
});

Deno.test("Proc.terminate is idempotent and the done callback runs exactly once", async () => {
  const proc = child(["sleep", "30000"]).start();
  let calls = 0;
  proc.onDone(() => void calls++);
  const first = proc.terminate();
  assert.equal(proc.terminate(), first);
  const outcome = await first;
  assert.equal(outcome.result, "terminated");
  assert.equal(await proc.terminate(), outcome);
  assert.equal(await proc.kill(), outcome);
  assert.equal(await proc.wait(), outcome);
  await flush();
  assert.equal(calls, 1);
});

Deno.test("Proc.terminate racing a natural exit settles once, on one outcome", async () => {
  const runs = [0, 40, 80, 120, 160].map(async (delayMs) => {
    const proc = child(["exit", "0"]).start();
    const seen: ProcOutcome[] = [];
    proc.onDone((outcome) => void seen.push(outcome));
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    const [byTerminate, byWait] = await Promise.all([proc.terminate(), proc.wait()]);
    assert.equal(byTerminate, byWait);
    assert.ok(["success", "terminated"].includes(byWait.result), byWait.result);
    assert.equal(await proc.terminate(), byWait);
    await flush();
    assert.deepEqual(seen, [byWait]);
  });
  await Promise.all(runs);
});

Deno.test("Proc.kill sends SIGKILL at once", async () => {
  const outcome = await child(["sleep", "30000"], { graceMs: 60_000 }).start().kill();
  assert.equal(outcome.result, "terminated");
  assert.equal(outcome.signal, "SIGKILL");
});

Deno.test("Proc timeout terminates the child with result timeout", async () => {
  const outcome = await child(["sleep", "30000"]).start({ timeoutMs: 150 }).wait();
  assert.equal(outcome.result, "timeout");
  assert.equal(outcome.signal, "SIGTERM");
  assert.ok(outcome.durationMs >= 140, `${outcome.durationMs}`);
});

Deno.test("Proc keeps result terminated when its timeout falls while terminating", async () => {
  const clock = new FakeClock();
  const proc = await startIgnoringTerm({ clock, graceMs: 1000 }, 500);
  const terminating = proc.terminate();
  await clock.tick(600); // the timeout's time passes while the child ignores SIGTERM
  assert.equal(proc.state, "running");
  await clock.tick(400); // the grace period ends: SIGKILL
  const outcome = await terminating;
  assert.equal(outcome.result, "terminated");
  assert.equal(outcome.signal, "SIGKILL");
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("Proc keeps result timeout when terminate comes after the timeout", async () => {
  const clock = new FakeClock();
  const proc = await startIgnoringTerm({ clock, graceMs: 1000 }, 500);
  await clock.tick(500); // timeout: SIGTERM, ignored
  const terminating = proc.terminate();
  await clock.tick(1000);
  const outcome = await terminating;
  assert.equal(outcome.result, "timeout");
  assert.equal(outcome.signal, "SIGKILL");
});

Deno.test("Proc.suspend pauses the timeout; resume counts it again", async () => {
  const clock = new FakeClock();
  const proc = child(["sleep", "30000"], { clock }).start({ timeoutMs: 1000 });
  await clock.tick(500);
  proc.suspend();
  assert.ok(proc.suspended);
  assert.ok(await waitUntil(() => isStopped(proc.pid!), 2000), "SIGSTOP reached the child");
  await clock.tick(5000);
  assert.equal(proc.state, "running");
  proc.resume();
  assert.ok(!proc.suspended);
  assert.ok(await waitUntil(() => !isStopped(proc.pid!), 2000), "SIGCONT reached the child");
  await clock.tick(499);
  assert.equal(proc.state, "running");
  await clock.tick(1);
  const outcome = await proc.wait();
  assert.equal(outcome.result, "timeout");
  assert.equal(outcome.signal, "SIGTERM");
});

Deno.test("Proc.terminate continues a suspended child so it acts on SIGTERM", async () => {
  const proc = child(["sleep", "30000"], { graceMs: 60_000 }).start();
  proc.suspend();
  assert.ok(await waitUntil(() => isStopped(proc.pid!), 2000));
  const outcome = await proc.terminate();
  assert.equal(outcome.signal, "SIGTERM");
  assert.ok(!proc.suspended);
});

Deno.test("Proc capture keeps a bounded tail of a 10 MB output", async () => {
  const outcome = await child(["spam", String(10 * 1024 * 1024)], { output: "capture" }).start()
    .wait();
  assert.equal(outcome.result, "success");
  assert.equal(outcome.stdout?.length, 65536);
  assert.ok(outcome.stdout?.endsWith("x\nEND\n"));
  assert.equal(outcome.stderr, "ERR-END\n");
  const small = await child(["spam", "5120"], { output: "capture", maxOutputBytes: 10 })
    .start().wait();
  assert.equal(small.stdout, "xxxxx\nEND\n");
});

Deno.test("Proc output lines passes each line of stdout and stderr to onLine", async () => {
  const lines: string[] = [];
  const outcome = await child(["spam", "3072"], {
    output: "lines",
    onLine: (line, stream) => lines.push(`${stream}:${line.length}:${line.slice(-3)}`),
  }).start().wait();
  assert.equal(outcome.result, "success");
  assert.equal(outcome.stdout, undefined);
  const stdout = lines.filter((line) => line.startsWith("stdout:"));
  assert.deepEqual(stdout, [
    "stdout:1023:xxx",
    "stdout:1023:xxx",
    "stdout:1023:xxx",
    "stdout:3:END",
  ]);
  assert.deepEqual(lines.filter((line) => line.startsWith("stderr:")), ["stderr:7:END"]);
  const pieces: string[] = [];
  await child(["spam", "1024"], {
    output: "lines",
    maxOutputBytes: 500,
    onLine: (line, stream) => stream === "stdout" && pieces.push(line),
  }).start().wait();
  assert.deepEqual(pieces.map((piece) => piece.length), [500, 500, 23, 3]);
  assert.throws(() => new Proc("true", { output: "lines" }), /needs an 'onLine' callback/);
});

Deno.test("Aborting the start signal terminates the child; an aborted one prevents start", async () => {
  const controller = new AbortController();
  const proc = child(["sleep", "30000"]).start({ signal: controller.signal });
  controller.abort();
  assert.equal((await proc.wait()).result, "terminated");
  const late = child(["exit", "0"]);
  assert.throws(() => late.start({ signal: controller.signal }), { name: "AbortError" });
  assert.equal(late.state, "created");
});

Deno.test("Proc.onDone calls each callback once; failing ones break nothing", async () => {
  const errors: unknown[] = [];
  const proc = child(["exit", "0"], { onCallbackError: (error) => errors.push(error) });
  const calls: string[] = [];
  proc.onDone(() => {
    calls.push("throws");
    throw new Error("sync failure");
  });
  proc.onDone(async () => {
    calls.push("rejects");
    await Promise.resolve();
    throw new Error("async failure");
  });
  proc.onDone((outcome) => void calls.push(`ok ${outcome.result}`));
  const outcome = await proc.start().wait();
  assert.equal(outcome.result, "success");
  proc.onDone(() => void calls.push("late"));
  assert.deepEqual(calls, ["throws", "rejects", "ok success"]);
  await flush();
  assert.deepEqual(calls, ["throws", "rejects", "ok success", "late"]);
  assert.deepEqual(errors.map((error) => (error as Error).message), [
    "sync failure",
    "async failure",
  ]);
});

Deno.test("Proc async dispose terminates a running child", async () => {
  let proc: Proc;
  {
    await using running = child(["sleep", "30000"]).start();
    proc = running;
  }
  assert.equal(proc.outcome?.result, "terminated");
});
