import assert from "node:assert/strict";
import { sleep } from "../../core/sleep.ts";
import { ShutdownSignal } from "../../process/mod.ts";

const CHILD = new URL("../fixtures/shutdown_child.ts", import.meta.url);

/** Runs the fixture in `mode`; `onLine` sees each line of its stdout as it comes. */
async function runChild(
  mode: string,
  onLine: (line: string, pid: number) => void = () => {},
): Promise<{ code: number; signal: Deno.Signal | null; lines: string[]; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "--no-check", CHILD.href, mode],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines: string[] = [];
  let partial = "";
  for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
    const parts = (partial + text).split("\n");
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      onLine(line, child.pid);
    }
  }
  const status = await child.status;
  return { code: status.code, signal: status.signal, lines, stderr: await stderr };
}

// Real signals run in a child: after its first shutdown signal a process holds its shutdown
// signals until it exits (the test process must not).
Deno.test("ShutdownSignal aborts on SIGTERM and says which signal came", async () => {
  const run = await runChild("sigterm");
  assert.equal(run.code, 0, run.stderr);
});

Deno.test("ShutdownSignal keeps the first of several signals", async () => {
  const run = await runChild("first");
  assert.equal(run.code, 0, run.stderr);
});

Deno.test("ShutdownSignal: a repeated SIGINT after disposal does not kill the program (130)", async () => {
  // The test waits for each step, so the repeat always lands after the disposal: without the
  // held signals, Deno's default action would end the child with 130 every time.
  const run = await runChild("repeat", (line, pid) => {
    if (line === "ready") Deno.kill(pid, "SIGINT");
    if (line === "disposed") {
      Deno.kill(pid, "SIGINT"); // the repeat (deno task forwards the group's Ctrl-C once more)
      Deno.kill(pid, "SIGUSR1"); // then: finish
    }
  });
  assert.equal(run.signal, null, `killed by ${run.signal}; ${run.stderr}`);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.lines, ["ready", "disposed", "done"]);
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
