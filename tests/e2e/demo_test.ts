/**
 * End to end: `deno task demo`, the README's main command — every part speaks, its command jobs'
 * output comes back, it stops by itself after `--duration` or on Ctrl-C, and leaves no process
 * behind.
 */

import assert from "node:assert/strict";
import { Cli, descendants, survivors, until } from "../fixtures/e2e_cli.ts";

const PARTS = ["bus", "sched-1", "sched-2", "periodic", "gauss"];

/** The parts that have printed a line so far. */
function speakers(demo: Cli): string[] {
  return PARTS.filter((part) => demo.lines.some((line) => line.startsWith(`[${part}]`)));
}

Deno.test("e2e: deno task demo -- --duration 8 runs every part and stops by itself; Ctrl-C too", async () => {
  // Both at once, to keep the suite short: the README's command, and a demo stopped by Ctrl-C.
  await using timed = Cli.task("demo", ["--", "--duration", "8"], "demo --duration 8");
  await using interrupted = Cli.run("demo.ts", [], "demo");
  await until(
    "the interrupted demo's schedulers run jobs",
    () => /^\[sched-\d\] .* started \(/m.test(interrupted.text),
    15_000,
  );
  const tree = descendants(interrupted.pid);
  assert.ok(tree.length >= 5, `the demo's processes: ${tree}`);
  interrupted.signal("SIGINT");
  assert.equal(await interrupted.exitCode(20_000), 0, interrupted.tail());
  assert.match(interrupted.text, /\[demo\] +all stopped$/m);
  assert.deepEqual(await survivors(tree), [], "Ctrl-C left processes behind");

  // Its processes, sampled until it ends, must all be gone afterwards.
  const seen = new Set<number>();
  await until("the timed demo ends", () => {
    for (const pid of descendants(timed.pid)) seen.add(pid);
    return timed.proc.state === "ended";
  }, 25_000);
  assert.equal(await timed.exitCode(), 0, timed.tail());
  assert.deepEqual(speakers(timed), PARTS, timed.text);
  assert.match(timed.text, /\[demo\] +stopping in 8 s/);
  assert.match(timed.text, /\[sched-\d\] .* started \(runtime/);
  // The command jobs' output came back to their submit processes: streamed, and a failure's
  // tails with its exit code.
  assert.match(timed.text, /^\[render\] +rendering frame 1$/m);
  assert.match(timed.text, /^\[check\] +checking inputs$/m);
  assert.match(timed.text, /^\[check\] +missing input\.mp4$/m);
  assert.match(timed.text, /^\[demo\] +check: submit exited with 3 \(the job's exit code\)$/m);
  assert.match(timed.text, /\[demo\] +all stopped$/m);
  assert.ok(seen.size >= 5, `the timed demo's processes: ${[...seen]}`);
  assert.deepEqual(await survivors([...seen]), [], "the timed demo left processes behind");
});
