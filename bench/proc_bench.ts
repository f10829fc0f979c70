/**
 * Proc's overhead: spawning and reaping /bin/true through `Proc` against a bare
 * `Deno.Command` with the same stdio (stdin, stdout and stderr `null`). Proc adds its own
 * process group (`detached: true`), exit-guard tracking, the outcome and the callbacks; the
 * middle case (bare + detached) separates the cost of the process group from Proc's own.
 * There is no input to generate: every iteration runs the same command.
 *
 * @module
 */

import { Proc } from "../process/mod.ts";

const COMMAND = "/bin/true";
const GROUP = "spawn and reap /bin/true";

Deno.bench({ group: GROUP, name: "bare Deno.Command", baseline: true }, async () => {
  const child = new Deno.Command(COMMAND, { stdin: "null", stdout: "null", stderr: "null" })
    .spawn();
  await child.status;
});

Deno.bench({ group: GROUP, name: "bare Deno.Command, detached" }, async () => {
  const child = new Deno.Command(COMMAND, {
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  await child.status;
});

Deno.bench({ group: GROUP, name: "Proc" }, async () => {
  await new Proc(COMMAND, { output: "null" }).start().wait();
});
