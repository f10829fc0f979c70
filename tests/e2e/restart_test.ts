/**
 * End to end (issue 11's measured failures): the bus CLI on a data directory, SIGKILLed and
 * started again on it. Accepted jobs survive it, no job runs on two schedulers across it, a slow
 * or stopped producer misses no final outcome, and a scheduler with --state-dir that finished a
 * job while the bus was down reports it after its own SIGKILL.
 */

import assert from "node:assert/strict";
import { Cli, until } from "../fixtures/e2e_cli.ts";
import { TcpRelay } from "../fixtures/tcp_relay.ts";
import { type Message, WsPeer } from "../fixtures/raw_ws.ts";
import {
  busOn,
  isEvent,
  jobFrames,
  jobRequest,
  killBus,
  lastSeq,
  rawProducer,
  rawScheduler,
} from "../fixtures/restart_bus.ts";
import { sleep } from "../../core/sleep.ts";

/** Runs `body` with a fresh temporary directory, removed afterwards. */
async function inTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "restart_e2e_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Holds the current bus (to kill it at the end whatever happens). */
class BusHolder implements AsyncDisposable {
  bus: Cli | undefined;
  async [Symbol.asyncDispose](): Promise<void> {
    await this.bus?.[Symbol.asyncDispose]();
  }
}

Deno.test("e2e restart: 30 accepted jobs survive a SIGKILLed bus; a running job's success is taken", async () => {
  await inTempDir(async (dir) => {
    await using held = new BusHolder();
    let url: string;
    [held.bus, url] = await busOn(dir);
    let run: string;
    {
      const s1 = await rawScheduler(url, "s1", 1);
      await using producer = Cli.run("producer/main.ts", [
        ...["--url", url, "--name", "p", "--count", "31", "--wait", "-p", "0"],
        ...["--priority", "0-10", "--runtime", "1", "--seed", "7"],
      ], "producer");
      run = String((await s1.next((m) => m.cmd === "job", 10_000)).id);
      s1.send({ cmd: "event", id: run, state: "started" });
      const accepted = (): number =>
        producer.lines.filter((l) => / accepted, queued/.test(l)).length;
      await until("31 accepted", () => accepted() === 31);
      // The bus and its producer die: nobody will send these jobs again.
      producer.signal("SIGKILL");
      await killBus(held.bus);
      await producer.exitCode();
      await s1.closed;
    }
    [held.bus, url] = await busOn(dir);
    await using bob = await rawProducer(url, "bob");
    bob.send({ cmd: "list" });
    const list = (await bob.next((m) => m.cmd === "jobs")).jobs as Message[];
    const waiting = list.filter((j) => j.state === "queued");
    const order = [...waiting].sort((a, b) =>
      Number(a.priority) - Number(b.priority) ||
      Number(String(a.id).slice(2)) - Number(String(b.id).slice(2))
    ).map((j) => String(j.id));
    assert.equal(waiting.length, 30, "every accepted job waits");
    assert.ok(new Set(waiting.map((j) => j.priority)).size > 3, "mixed priorities");
    assert.deepEqual(waiting.map((j) => String(j.id)), order, "in priority, then acceptance order");
    assert.deepEqual(list.filter((j) => j.id === run).map((j) => j.state), ["started"]);
    { // s1 comes back still running its job and reports its success: taken, not "unknown job"
      await using s1 = await rawScheduler(url, "s1", 1, { running: [run] });
      s1.send({ cmd: "drain" }); // it leaves after its report: no new job for it
      s1.send({ cmd: "event", id: run, state: "succeeded", result: { exitCode: 0 } });
      assert.deepEqual((await s1.next((m) => m.cmd === "reported")).ids, [run]);
      assert.deepEqual(s1.all().filter((m) => m.cmd === "error" || m.cmd === "cancel"), []);
    } // s1 leaves after its report: the order below is s2's alone
    await using s2 = await rawScheduler(url, "s2", 1);
    for (const id of order) {
      const frame = await s2.next((m) => m.cmd === "job", 5000);
      assert.equal(frame.id, id);
      s2.send({ cmd: "event", id, state: "started" });
      s2.send({ cmd: "event", id, state: "succeeded", result: { exitCode: 0 } });
    }
    await s2.next((m) => m.cmd === "reported" && (m.ids as string[]).includes(order.at(-1)!));
    bob.send({ cmd: "list", state: ["succeeded"] });
    const done = await bob.next((m) => m.cmd === "jobs");
    assert.equal((done.jobs as Message[]).length, 31);
    assert.deepEqual(jobFrames(s2), order, "each job ran once, in priority order");
  });
});

Deno.test("e2e restart: a job running at S1 is never sent to S2 across a bus restart; S1 keeps it", async () => {
  await inTempDir(async (dir) => {
    await using held = new BusHolder();
    let url: string;
    [held.bus, url] = await busOn(dir);
    let seen: number;
    {
      const s1 = await rawScheduler(url, "s1", 1);
      const ann = await rawProducer(url, "ann");
      ann.send(jobRequest("J", 1));
      await s1.next((m) => m.cmd === "job" && m.id === "J");
      s1.send({ cmd: "event", id: "J", state: "started" });
      await ann.next(isEvent("J", "started"));
      seen = lastSeq(ann);
      await killBus(held.bus);
      await Promise.all([ann.closed, s1.closed]);
    }
    [held.bus, url] = await busOn(dir);
    // S2 comes first, free; the producer re-sends J and learns where it stands.
    await using s2 = await rawScheduler(url, "s2", 1);
    await using ann = await rawProducer(url, "ann", { after: seen });
    ann.send(jobRequest("J", 1));
    const answer = await ann.next((m) => m.cmd === "accepted" && m.id === "J");
    assert.equal(answer.duplicate, true);
    assert.equal(answer.state, "started");
    // A less urgent job K: had J been requeued, S2 would get J before K.
    ann.send(jobRequest("K", 9));
    assert.equal((await s2.next((m) => m.cmd === "job")).id, "K");
    // S1 reconnects late, still running J: kept, neither cancelled nor sent again.
    await using s1 = await rawScheduler(url, "s1", 1, { running: ["J"] });
    s1.send({ cmd: "event", id: "J", state: "succeeded", result: { exitCode: 0 } });
    assert.deepEqual((await s1.next((m) => m.cmd === "reported")).ids, ["J"]);
    await ann.next(isEvent("J", "succeeded"));
    s2.send({ cmd: "event", id: "K", state: "succeeded", result: { exitCode: 0 } });
    await ann.next(isEvent("K", "succeeded"));
    assert.deepEqual(jobFrames(s2), ["K"], "J never went to S2");
    assert.deepEqual(
      s1.all().filter((m) => ["job", "cancel", "error"].includes(String(m.cmd))),
      [],
    );
    const states = ann.all().filter((m) => m.cmd === "event" && m.id === "J").map((m) => m.state);
    assert.deepEqual(states, ["succeeded"], "J was not requeued nor started again");
  });
});

Deno.test("e2e restart: the jobs of a scheduler that never comes back are requeued after --recover-grace", async () => {
  await inTempDir(async (dir) => {
    await using held = new BusHolder();
    let url: string;
    [held.bus, url] = await busOn(dir);
    let seen: number;
    {
      const s1 = await rawScheduler(url, "s1", 1);
      const ann = await rawProducer(url, "ann");
      ann.send(jobRequest("J", 1));
      await s1.next((m) => m.cmd === "job" && m.id === "J");
      s1.send({ cmd: "event", id: "J", state: "started" });
      await ann.next(isEvent("J", "started"));
      seen = lastSeq(ann);
      await killBus(held.bus);
      await Promise.all([ann.closed, s1.closed]);
    }
    const restarted = Date.now();
    [held.bus, url] = await busOn(dir, ["--recover-grace", "1"]);
    await using s2 = await rawScheduler(url, "s2", 1);
    await using ann = await rawProducer(url, "ann", { after: seen });
    const requeued = await ann.next(isEvent("J", "requeued"), 5000);
    assert.match(String(requeued.reason), /did not come back/);
    assert.equal((await s2.next((m) => m.cmd === "job", 5000)).id, "J");
    assert.ok(Date.now() - restarted >= 1000, "not before the grace");
    s2.send({ cmd: "event", id: "J", state: "started" });
    s2.send({ cmd: "event", id: "J", state: "succeeded", result: { exitCode: 0 } });
    await ann.next(isEvent("J", "succeeded"));
    assert.deepEqual(jobFrames(s2), ["J"]);
  });
});

/** Writes `n` command jobs (one JSON line each) to `dir/jobs.jsonl`; returns its path. */
async function jobsFile(dir: string, n: number): Promise<string> {
  const path = `${dir}/jobs.jsonl`;
  await Deno.writeTextFile(path, `${JSON.stringify({ command: ["true"] })}\n`.repeat(n));
  return path;
}

/** A raw scheduler allowing any command. */
const commandScheduler = (
  url: string,
  name: string,
  slots: number,
  extra: Message = {},
): Promise<WsPeer> => rawScheduler(url, name, slots, { commands: ["*"], ...extra });

/** Reports each of `ids` started and succeeded from `peer`, with `stdoutTail` in the result. */
function finishAll(peer: WsPeer, ids: string[], stdoutTail = ""): void {
  for (const id of ids) {
    peer.send({ cmd: "event", id, state: "started" });
    peer.send({ cmd: "event", id, state: "succeeded", result: { exitCode: 0, stdoutTail } });
  }
}

/** Waits until the bus has acknowledged (`reported`) the final reports of all `ids`. */
async function allReported(peer: WsPeer, ids: string[]): Promise<void> {
  const want = new Set(ids);
  const reported = (): number =>
    peer.all().filter((m) => m.cmd === "reported").flatMap((m) => m.ids as string[])
      .filter((id) => want.has(id)).length;
  await until(`${ids.length} reported`, () => reported() === want.size, 10_000);
}

Deno.test("e2e restart: submit --wait stopped (SIGSTOP) while 4,000 jobs end gets every outcome and exits", async () => {
  await inTempDir(async (dir) => {
    const n = 4000;
    const file = await jobsFile(dir, n);
    await using held = new BusHolder();
    let url: string;
    [held.bus, url] = await busOn(`${dir}/data`, ["--sync", "normal"]);
    await using sched = await commandScheduler(url, "s", n);
    await using submit = Cli.task("submit", ["--url", url, "--wait", "--file", file], "submit");
    await until(`${n} jobs at the scheduler`, () => jobFrames(sched).length === n, 12_000);
    const ids = jobFrames(sched);
    submit.signal("SIGSTOP");
    try {
      finishAll(sched, ids, "x".repeat(4096)); // ~17 MB of finals: more than the socket holds
      await allReported(sched, ids); // every final committed: the bus has them all to send
      await sleep(1000); // the producer stays stopped while the bus pushes ~20,000 frames at it
    } finally {
      submit.signal("SIGCONT");
    }
    assert.equal(await submit.exitCode(15_000), 0, submit.tail());
    assert.match(submit.text, new RegExp(`^submit: ${n} of ${n} done \\(succeeded ${n}\\)$`, "m"));
  });
});

Deno.test("e2e restart: submit --wait gets its outcomes through a bus SIGKILL and restart", async () => {
  await inTempDir(async (dir) => {
    const file = await jobsFile(dir, 3);
    await using held = new BusHolder();
    let busUrl: string;
    [held.bus, busUrl] = await busOn(`${dir}/data`);
    await using relay = new TcpRelay(Number(new URL(busUrl).port));
    const sched = await commandScheduler(busUrl, "s", 3); // closed by the bus's death
    await using submit = Cli.task("submit", ["--url", relay.url, "--wait", "--file", file]);
    await until("3 jobs at the scheduler", () => jobFrames(sched).length === 3);
    const ids = jobFrames(sched);
    for (const id of ids) sched.send({ cmd: "event", id, state: "started" });
    await until("3 ids printed", () => submit.lines.filter((l) => /^j-/.test(l)).length === 3);
    relay.target = undefined;
    await killBus(held.bus);
    await sched.closed;
    [held.bus, busUrl] = await busOn(`${dir}/data`);
    relay.target = Number(new URL(busUrl).port);
    await using back = await commandScheduler(busUrl, "s", 3, { running: ids });
    finishAll(back, ids);
    assert.equal(await submit.exitCode(15_000), 0, submit.tail());
    assert.match(submit.text, /^submit: 3 of 3 done \(succeeded 3\)$/m);
    assert.deepEqual(jobFrames(back), [], "nothing ran again");
  });
});

Deno.test("e2e restart: a job the scheduler finished while the bus was down reaches its producer after both are SIGKILLed (--state-dir)", async () => {
  await inTempDir(async (dir) => {
    await using held = new BusHolder();
    let busUrl: string;
    [held.bus, busUrl] = await busOn(`${dir}/data`);
    await using relay = new TcpRelay(Number(new URL(busUrl).port));
    const args = ["--url", relay.url, "--name", "s", "-s", "1", "--state-dir", `${dir}/s`];
    const scheduler = (): Cli =>
      Cli.run("scheduler/main.ts", [...args, "--exec", "/bin/sleep"], "scheduler");
    let seen: number;
    {
      await using first = scheduler();
      await first.waitFor(/registered:/);
      const ann = await rawProducer(busUrl, "ann");
      ann.send(jobRequest("J", 5, 3)); // long enough to outlive the bus
      await ann.next(isEvent("J", "started"));
      seen = lastSeq(ann);
      // The bus dies while J runs; J ends meanwhile; then the scheduler dies too.
      relay.target = undefined;
      await killBus(held.bus);
      await ann.closed;
      const lost = first.lines.indexOf((await first.waitFor(/lost the bus/)).input!);
      await first.waitFor(/job J p5 succeeded/, 15_000, lost); // after the bus died
      first.signal("SIGKILL");
      await first.exitCode();
    }
    await using second = scheduler();
    await second.waitFor(/state dir .*: 1 outcome not stored by the bus yet/);
    [held.bus, busUrl] = await busOn(`${dir}/data`);
    relay.target = Number(new URL(busUrl).port);
    await using ann = await rawProducer(busUrl, "ann", { after: seen });
    const ended = await ann.next(isEvent("J", "succeeded"), 10_000);
    assert.equal(ended.scheduler, "s");
    await second.waitFor(/connected to /);
    ann.send({ cmd: "show", id: "J" });
    const info = (await ann.next((m) => m.cmd === "job_info")).job as { history: Message[] };
    assert.deepEqual(info.history.map((h) => h.state), ["queued", "started", "succeeded"]);
    assert.doesNotMatch(second.text, /job J .*started/, "J did not run again");
    assert.deepEqual(ann.all().filter((m) => m.cmd === "event").map((m) => m.state), ["succeeded"]);
  });
});
