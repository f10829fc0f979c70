/**
 * End to end: no orphans, no double runs. A command job and its whole process tree (a
 * grandchild included) are gone within 1 s of its scheduler's death by SIGKILL — the signal no
 * handler sees — so the bus can run it elsewhere without two copies running.
 */

import assert from "node:assert/strict";
import { Cli, descendants, startBus, survivors, until } from "../fixtures/e2e_cli.ts";
import { WsPeer } from "../fixtures/raw_ws.ts";

Deno.test("e2e: a command job and its grandchild are gone within 1 s of its scheduler's SIGKILL", async () => {
  const [bus, url] = await startBus();
  await using _bus = bus;
  const dir = Deno.makeTempDirSync({ prefix: "orphans_test_" });
  try {
    const args = ["--url", url, "--name", "doomed", "--allow-command", "sh"];
    await using scheduler = Cli.run("scheduler/main.ts", args, "doomed");
    await scheduler.waitFor(/registered: /);
    await using producer = await WsPeer.open(url);
    await producer.register({ type: "producer", protocol: 2, name: "p" });
    const pids = `${dir}/pids`;
    // The job (a shell) starts a grandchild in the background, says both pids, and waits.
    const script = `sleep 60 & echo $$ $! > ${pids}.tmp; mv ${pids}.tmp ${pids}; sleep 60`;
    producer.send({
      cmd: "job_request",
      id: "tree",
      payload: { priority: 2, command: ["sh", "-c", script] },
    });
    await until("the job wrote its pids", () => exists(pids));
    const [shell, grandchild] = Deno.readTextFileSync(pids).trim().split(" ").map(Number);
    // The job's shell, its two sleeps (the second starts just after the pids are written), the
    // reaper.
    await until("the job's whole tree", () => descendants(scheduler.pid).length >= 4);
    const tree = descendants(scheduler.pid);
    assert.ok(
      tree.includes(shell!) && tree.includes(grandchild!),
      `${shell} ${grandchild} in ${tree}`,
    );
    assert.ok(tree.length >= 4, `tree ${tree}`);
    Deno.kill(scheduler.pid, "SIGKILL"); // the scheduler alone, not its group
    const killedAt = Date.now();
    const left = await survivors(tree, 1000);
    const tookMs = Date.now() - killedAt;
    assert.deepEqual(left, [], `still alive ${tookMs} ms after the SIGKILL: ${describe(left)}`);
    assert.ok(tookMs <= 1000, `${tookMs} ms`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** Each pid with its command line, for failure messages. */
function describe(pids: number[]): string {
  return pids.map((pid) => {
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
      return `${pid} ${cmdline}`;
    } catch {
      return `${pid} (gone)`;
    }
  }).join("; ");
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
