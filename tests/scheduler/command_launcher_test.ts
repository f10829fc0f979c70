import assert from "node:assert/strict";
import { Runner } from "../../scheduler/runner.ts";
import { commandLauncher, type CommandLauncherOptions } from "../../scheduler/command_launcher.ts";
import type { CommandSpec } from "../../scheduler/command_spec.ts";
import type { JobOutcome } from "../../scheduler/job.ts";
import { GroupReaper } from "../../process/group_reaper.ts";
import { findUser } from "../../scheduler/user_account.ts";

const ENV = { PATH: "/usr/bin:/bin", HOME: "/root", LANG: "C.UTF-8", SCHED_TOKEN: "secret" };

/** A command job's fields but its priority. */
type Spec = Pick<CommandSpec, "command" | "cwd" | "env" | "grace">;

/** Runs one command job through a Runner with the command launcher; its outcome. */
async function run(
  spec: Spec,
  options: CommandLauncherOptions = {},
  timeoutMs = 10_000,
): Promise<JobOutcome> {
  await using runner = new Runner<CommandSpec>({
    launch: commandLauncher({ env: ENV, ...options }),
    timeoutMs,
  });
  return await runner.submit({ priority: 1, ...spec }, { id: "j-1" }).done;
}

Deno.test("commandLauncher: exit 0 succeeds with the output's tails", async () => {
  const outcome = await run({ command: ["sh", "-c", "echo out; echo err >&2"] });
  assert.equal(outcome.state, "succeeded");
  assert.equal(outcome.code, 0);
  assert.equal(outcome.launch?.signal, null);
  assert.deepEqual(outcome.launch?.output, {
    stdoutTail: "out\n",
    stderrTail: "err\n",
    stdoutTruncated: false,
    stderrTruncated: false,
  });
});

Deno.test("commandLauncher: exit 3 fails with its exit code", async () => {
  const outcome = await run({ command: ["sh", "-c", "echo bad >&2; exit 3"] });
  assert.equal(outcome.state, "failed");
  assert.equal(outcome.reason, "exit code 3");
  assert.equal(outcome.code, 3);
  assert.equal(outcome.launch?.output?.stderrTail, "bad\n");
});

Deno.test("commandLauncher: death by a signal gives its name and no exit code", async () => {
  const outcome = await run({ command: ["sh", "-c", "kill -KILL $$"] });
  assert.equal(outcome.state, "failed");
  assert.equal(outcome.code, null);
  assert.equal(outcome.launch?.signal, "SIGKILL");
  assert.equal(outcome.reason, "killed by SIGKILL");
});

Deno.test("commandLauncher: a timeout ends the job (SIGTERM) and keeps its output", async () => {
  const outcome = await run({ command: ["sh", "-c", "echo started; exec sleep 30"] }, {}, 200);
  assert.equal(outcome.state, "timed_out");
  assert.equal(outcome.launch?.signal, "SIGTERM");
  assert.equal(outcome.launch?.output?.stdoutTail, "started\n");
});

Deno.test("commandLauncher: a job that cannot start fails with startError and never runs", async () => {
  using dir = new TempDir();
  const script = `${dir.path}/run.sh`;
  Deno.writeTextFileSync(script, "#!/bin/sh\necho ran\n", { mode: 0o644 });
  const cases: [Spec, string][] = [
    [{ command: ["no-such-tool-here", "x"] }, "no such executable: no-such-tool-here"],
    [{ command: ["/no/such/tool"] }, "no such executable: /no/such/tool"],
    [{ command: ["true"], cwd: "/no/such/dir" }, "no such cwd: /no/such/dir"],
    [{ command: ["true"], cwd: script }, `cwd is not a directory: ${script}`],
    [{ command: ["./run.sh"], cwd: dir.path }, "permission denied: ./run.sh"],
    [{ command: [dir.path] }, `not an executable file: ${dir.path}`],
  ];
  for (const [spec, startError] of cases) {
    const outcome = await run(spec);
    assert.equal(outcome.state, "failed", startError);
    assert.equal(outcome.launch?.startError, startError);
    assert.equal(outcome.reason, `could not start: ${startError}`);
    assert.equal(outcome.code, null);
  }
});

Deno.test("commandLauncher: an exec that fails after the checks is a start error too", async () => {
  using dir = new TempDir();
  const script = `${dir.path}/run.sh`;
  Deno.writeTextFileSync(script, "#!/no/such/interpreter\n", { mode: 0o755 });
  const outcome = await run({ command: [script] });
  assert.equal(outcome.state, "failed");
  assert.equal(outcome.launch?.startError, `no such executable: ${script}`);
});

Deno.test("commandLauncher: env is the scheduler's without credentials, plus the job's", async () => {
  const printEnv = ["sh", "-c", 'echo "$SCHED_TOKEN|$FOO|$HOME|$TERM"'];
  const env = { ...ENV, TERM: "xterm" };
  const plain = await run({ command: printEnv, env: { FOO: "1" } }, { env });
  assert.equal(plain.launch?.output?.stdoutTail, "|1|/root|xterm\n");
  const cleared = await run({ command: printEnv, env: { FOO: "2" } }, { env, clearEnv: true });
  assert.equal(cleared.launch?.output?.stdoutTail, "|2|/root|\n");
});

Deno.test("commandLauncher: cwd, argv without a shell", async () => {
  const outcome = await run({
    command: ["sh", "-c", 'pwd; echo "$1"', "sh", "a b;c"],
    cwd: "/tmp",
  });
  assert.equal(outcome.launch?.output?.stdoutTail, "/tmp\na b;c\n");
});

Deno.test("commandLauncher: tails keep the last bytes, valid UTF-8 from a character boundary", async () => {
  // 3000 × "é" (2 bytes each) then "end\n": the tail of 101 bytes starts inside an "é".
  const outcome = await run(
    {
      command: [
        "sh",
        "-c",
        "i=0; while [ $i -lt 3000 ]; do printf 'é'; i=$((i+1)); done; echo end",
      ],
    },
    { outputTailBytes: 101 },
  );
  const tail = outcome.launch?.output?.stdoutTail ?? "";
  assert.equal(outcome.launch?.output?.stdoutTruncated, true);
  assert.equal(tail, "é".repeat(48) + "end\n");
  assert.equal(outcome.launch?.output?.stderrTruncated, false);
});

Deno.test("commandLauncher: invalid UTF-8 is replaced", async () => {
  const outcome = await run({ command: ["printf", "a\\377b"] });
  assert.equal(outcome.launch?.output?.stdoutTail, "a\uFFFDb");
});

Deno.test("commandLauncher --output-dir writes the whole output, named in the outcome", async () => {
  using dir = new TempDir();
  await using runner = new Runner<CommandSpec>({
    launch: commandLauncher({ env: ENV, outputTailBytes: 4, outputDir: dir.path }),
  });
  const command = ["sh", "-c", "seq 1 1000; echo oops >&2"];
  const outcome = await runner.submit({ priority: 1, command }, { id: "a/../b" }).done;
  const output = outcome.launch?.output;
  assert.ok(output?.stdoutFile?.startsWith(`${dir.path}/_a_.._b-`), output?.stdoutFile);
  assert.ok(output?.stderrFile?.endsWith(".err"));
  const lines = Array.from({ length: 1000 }, (_, i) => `${i + 1}\n`).join("");
  assert.equal(Deno.readTextFileSync(output!.stdoutFile!), lines);
  assert.equal(Deno.readTextFileSync(output!.stderrFile!), "oops\n");
  assert.equal(output?.stdoutTail, "000\n");
  const plain = await runner.submit({ priority: 1, command: ["true"] }, { id: "j-2" }).done;
  assert.equal(plain.launch?.output?.stdoutFile, `${dir.path}/j-2.out`);
});

Deno.test("commandLauncher: 50 MB of output keeps the scheduler's memory flat", async () => {
  const before = Deno.memoryUsage().rss;
  const outcome = await run({ command: ["head", "-c", String(50 * 1024 * 1024), "/dev/zero"] });
  const grown = Deno.memoryUsage().rss - before;
  assert.equal(outcome.state, "succeeded");
  assert.equal(outcome.launch?.output?.stdoutTruncated, true);
  assert.equal(outcome.launch?.output?.stdoutTail?.length, 16384);
  assert.ok(grown < 30 * 1024 * 1024, `RSS grew by ${(grown / 1048576).toFixed(1)} MB`);
});

Deno.test("commandLauncher: the job's grace is its time between SIGTERM and SIGKILL", async () => {
  // The job ignores SIGTERM: with grace 0 the SIGKILL follows at once.
  const started = Date.now();
  const outcome = await run(
    { command: ["sh", "-c", "trap '' TERM; sleep 30 & wait"], grace: 0 },
    { graceMs: 60_000 },
    100,
  );
  assert.equal(outcome.state, "timed_out");
  assert.equal(outcome.launch?.signal, "SIGKILL");
  assert.ok(Date.now() - started < 10_000);
});

Deno.test("commandLauncher: a job's leftovers in its group go when it ends; the reaper forgets it", async () => {
  using dir = new TempDir();
  await using reaper = new GroupReaper();
  await using runner = new Runner<CommandSpec>({
    launch: commandLauncher({ env: ENV, reaper }),
  });
  const pidFile = `${dir.path}/pid`;
  const command = ["sh", "-c", `sleep 30 >/dev/null 2>&1 & echo $! > ${pidFile}`];
  const outcome = await runner.submit({ priority: 1, command }).done;
  assert.equal(outcome.state, "succeeded");
  const pid = Number(Deno.readTextFileSync(pidFile));
  await until(`the leftover ${pid} is gone`, () => !alive(pid));
  assert.equal(reaper.watching, 0);
});

/** Polls `check` every 10 ms until it is true; fails after `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Whether a process exists (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** A temporary directory, removed at the end of the test. */
class TempDir {
  readonly path = Deno.makeTempDirSync({ prefix: "command_launcher_test_" });
  [Symbol.dispose](): void {
    Deno.removeSync(this.path, { recursive: true });
  }
}

Deno.test({
  name: "commandLauncher --user runs the job as that user, with the user's HOME",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const user = findUser("nobody", Deno.readTextFileSync("/etc/passwd"));
    assert.ok(user !== undefined, "no user nobody here");
    const command = ["sh", "-c", 'echo "$(id -u) $(id -g) $(id -G) $HOME $USER"'];
    const outcome = await run({ command }, { user });
    assert.equal(outcome.state, "succeeded", outcome.launch?.output?.stderrTail);
    assert.equal(
      outcome.launch?.output?.stdoutTail,
      `${user.uid} ${user.gid} ${user.gid} ${user.home} nobody\n`,
    );
  },
});
