/**
 * What a job's own process group and the no-orphan guarantee add to a spawn, measured with a
 * parent the size of a busy scheduler: ≈ 160 MB of live heap, allocated once outside the
 * measured part (a fork's cost grows with the parent's memory; `posix_spawn`'s does not).
 *
 * Each case spawns and reaps /bin/true with stdin, stdout and stderr `null`:
 * - bare `Deno.Command` (the baseline: Deno's `posix_spawn`);
 * - `detached: true` (what `Proc` does by default: a fork of the whole parent);
 * - `/usr/bin/setsid /bin/true` (not detached: the child's own exec makes the new session);
 * - `setsid` + `setpriv --pdeathsig KILL` (the direct child dies with the spawning thread — but
 *   not its children: no guarantee for a job's tree);
 * - `setsid` + the per-scheduler `GroupReaper` (our choice: a line on a pipe per start and per
 *   end; the whole group dies with the scheduler) — bare, and as `Proc` with `group: setsid`;
 * - the whole command launcher (start checks, environment, output pipes and tails, reaper) in a
 *   `Runner`, and `Proc` with its default `detached` for comparison.
 *
 * @module
 */

import { Proc } from "../process/mod.ts";
import { GroupReaper } from "../process/group_reaper.ts";
import { commandLauncher, SETSID } from "../scheduler/command_launcher.ts";
import { Runner } from "../scheduler/runner.ts";
import type { CommandSpec } from "../scheduler/command_spec.ts";

const TRUE = "/bin/true";
const SETPRIV = "/usr/bin/setpriv";
const GROUP = "spawn and reap /bin/true, parent with ≈ 160 MB of live heap";
const NULL_IO = { stdin: "null", stdout: "null", stderr: "null" } as const;

// ≈ 160 MB of live heap (measured: heapUsed 162 MB, RSS 192 MB): 10 M doubles in one array,
// kept reachable for the whole run.
const ballast: number[] = new Array<number>(10_000_000).fill(0.5);
(globalThis as { ballast?: number[] }).ballast = ballast;

const reaper = new GroupReaper();
reaper.start();
const runner = new Runner<CommandSpec>({
  slots: 1,
  launch: commandLauncher({ reaper, env: { PATH: "/usr/bin:/bin" } }),
});

async function spawn(command: string, args: string[], detached = false): Promise<void> {
  await new Deno.Command(command, { args, ...NULL_IO, detached }).spawn().status;
}

Deno.bench({ group: GROUP, name: "bare Deno.Command", baseline: true }, async () => {
  await spawn(TRUE, []);
});

Deno.bench({ group: GROUP, name: "detached: true" }, async () => {
  await spawn(TRUE, [], true);
});

Deno.bench({ group: GROUP, name: "setsid" }, async () => {
  await spawn(SETSID, [TRUE]);
});

Deno.bench({ group: GROUP, name: "setsid + setpriv --pdeathsig KILL" }, async () => {
  await spawn(SETSID, [SETPRIV, "--pdeathsig", "KILL", TRUE]);
});

Deno.bench({ group: GROUP, name: "setsid + GroupReaper (chosen)" }, async () => {
  const child = new Deno.Command(SETSID, { args: [TRUE], ...NULL_IO }).spawn();
  reaper.watch(child.pid);
  await child.status;
  reaper.unwatch(child.pid);
});

Deno.bench({ group: GROUP, name: "Proc, group setsid + GroupReaper" }, async () => {
  const proc = new Proc(TRUE, { output: "null", group: SETSID }).start();
  reaper.watch(proc.pid!);
  await proc.wait();
  reaper.unwatch(proc.pid!);
});

Deno.bench({ group: GROUP, name: "Proc, detached (its default)" }, async () => {
  await new Proc(TRUE, { output: "null" }).start().wait();
});

Deno.bench({ group: GROUP, name: "commandLauncher in a Runner (whole job)" }, async () => {
  await runner.submit({ priority: 1, command: [TRUE] }).done;
});
