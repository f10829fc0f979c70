import assert from "node:assert/strict";
import { isGone, waitUntil } from "./proc_os.ts";

const REAPER = new URL("../../process/group_reaper.ts", import.meta.url).href;

/**
 * A child Deno, with the scheduler task's permissions (no --allow-all: no /proc/<pid>/fd),
 * starts a process group, lists it with a GroupReaper and kills itself with SIGKILL in the same
 * synchronous run: the listing must have reached the reaper before `watch` returned.
 */
Deno.test("GroupReaper lists a group before watch returns, without --allow-all (a SIGKILL right after)", async () => {
  const code = `
    import { GroupReaper } from "${REAPER}";
    const reaper = new GroupReaper();
    reaper.start();
    const job = new Deno.Command("/usr/bin/setsid", { args: ["sleep", "30"] }).spawn();
    await new Promise((resolve) => setTimeout(resolve, 50)); // the group exists
    console.log(job.pid);
    reaper.watch(job.pid);
    Deno.kill(Deno.pid, "SIGKILL");
  `;
  const dir = await Deno.makeTempDir();
  const file = `${dir}/parent.ts`;
  await Deno.writeTextFile(file, code);
  const child = new Deno.Command(Deno.execPath(), { // not `deno eval`: it allows everything
    args: ["run", "-q", "--no-check", "--allow-run", "--allow-read", "--allow-write", file],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const { stdout, stderr, signal } = await child.output();
  await Deno.remove(dir, { recursive: true });
  assert.equal(signal, "SIGKILL", new TextDecoder().decode(stderr));
  const pid = Number(new TextDecoder().decode(stdout).trim());
  assert.ok(pid > 1, "the job's pid");
  const gone = await waitUntil(() => isGone(pid), 5000);
  if (!gone) Deno.kill(-pid, "SIGKILL");
  assert.ok(gone, `the job ${pid} outlived its parent's SIGKILL`);
});
