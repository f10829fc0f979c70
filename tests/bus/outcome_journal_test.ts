import assert from "node:assert/strict";
import { OutcomeJournal, OutcomeJournalError } from "../../bus/outcome_journal.ts";
import type { SchedulerEventMessage } from "../../bus/protocol.ts";

/** A final report of job `id`. */
const final = (id: string, state: "succeeded" | "failed" = "succeeded"): SchedulerEventMessage => ({
  cmd: "event",
  id,
  state,
  at: 1_700_000_000_000,
  result: { exitCode: state === "succeeded" ? 0 : 1 },
});

/** Runs `body` with a fresh temporary directory, removed afterwards. */
async function withDir(body: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The journal file's lines. */
function lines(dir: string): string[] {
  return Deno.readTextFileSync(`${dir}/outcomes.jsonl`).split("\n").filter(Boolean);
}

Deno.test("OutcomeJournal keeps appended reports across a reopen, oldest first, until acked", () =>
  withDir((dir) => {
    const journal = OutcomeJournal.open(dir, { name: "a" });
    journal.append(final("j1"));
    journal.append(final("j2", "failed"));
    journal.append(final("j3"));
    journal.ack("j2");
    journal.ack("unknown"); // ignored
    assert.equal(journal.size, 2);
    journal.close();
    journal.close(); // idempotent
    const again = OutcomeJournal.open(dir, { name: "a" });
    assert.deepEqual(again.pending, [final("j1"), final("j3")]);
    // Reopening rewrote the journal with only what is pending.
    assert.equal(lines(dir).length, 2);
    again.ack("j1");
    again.ack("j3");
    again.close();
    const empty = OutcomeJournal.open(dir, { name: "a" });
    assert.deepEqual(empty.pending, []);
    empty.close();
  }));

Deno.test("OutcomeJournal keeps the later report when a job is appended twice", () =>
  withDir((dir) => {
    const journal = OutcomeJournal.open(dir, { name: "a" });
    journal.append(final("j1"));
    journal.append(final("j2"));
    journal.append(final("j1", "failed"));
    assert.deepEqual(journal.pending.map((m) => [m.id, m.state]), [["j2", "succeeded"], [
      "j1",
      "failed",
    ]]);
    journal.close();
    const again = OutcomeJournal.open(dir, { name: "a" });
    assert.deepEqual(again.pending.map((m) => [m.id, m.state]), [["j2", "succeeded"], [
      "j1",
      "failed",
    ]]);
    again.close();
  }));

Deno.test("OutcomeJournal rewrites itself when acknowledged lines pile up", () =>
  withDir((dir) => {
    const journal = OutcomeJournal.open(dir, { name: "a" });
    journal.append(final("keep"));
    for (let i = 0; i < 1500; i++) {
      journal.append(final(`j${i}`));
      journal.ack(`j${i}`);
    }
    // 1 + 3,000 lines without compaction; the rewrite after 1,000 acks leaves far fewer.
    assert.ok(lines(dir).length < 1100, `${lines(dir).length} lines`);
    journal.close();
    const again = OutcomeJournal.open(dir, { name: "a" });
    assert.deepEqual(again.pending.map((m) => m.id), ["keep"]);
    again.close();
  }));

Deno.test("OutcomeJournal ignores a torn last line with a notice, and refuses a corrupt one before it", () =>
  withDir((dir) => {
    const good = JSON.stringify({ final: final("j1") });
    Deno.writeTextFileSync(`${dir}/outcomes.jsonl`, `${good}\n{"ack":"j`);
    const notices: string[] = [];
    const journal = OutcomeJournal.open(dir, { name: "a", onNotice: (n) => notices.push(n) });
    assert.deepEqual(journal.pending.map((m) => m.id), ["j1"]);
    assert.equal(notices.length, 1);
    assert.match(notices[0]!, /outcomes\.jsonl: ignored a torn last line \(9 bytes\)/);
    journal.close();
    assert.deepEqual(lines(dir), [good]); // the torn line is gone
    Deno.writeTextFileSync(`${dir}/outcomes.jsonl`, `garbage\n${good}\n`);
    assert.throws(() => OutcomeJournal.open(dir, { name: "a" }), {
      name: "OutcomeJournalError",
      message: /outcomes\.jsonl: line 1 is corrupt: garbage/,
    });
    // Nothing was overwritten, and the directory is not left locked.
    assert.equal(Deno.readTextFileSync(`${dir}/outcomes.jsonl`), `garbage\n${good}\n`);
    Deno.writeTextFileSync(`${dir}/outcomes.jsonl`, "");
    OutcomeJournal.open(dir, { name: "a" }).close();
  }));

Deno.test("OutcomeJournal refuses a state dir written by a scheduler of another name", () =>
  withDir((dir) => {
    OutcomeJournal.open(dir, { name: "node-a" }).close();
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(`${dir}/scheduler.json`)), {
      name: "node-a",
    });
    assert.throws(() => OutcomeJournal.open(dir, { name: "node-b" }), (error) => {
      assert.ok(error instanceof OutcomeJournalError);
      assert.equal(
        error.message,
        `state dir ${dir} belongs to scheduler "node-a", not "node-b": give each scheduler its own state dir`,
      );
      return true;
    });
  }));

Deno.test("OutcomeJournal refuses a state dir held by a live process, and takes over a dead one's", async () => {
  await withDir(async (dir) => {
    // A live process other than this one: a child that waits for its stdin to close.
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "for await (const _ of Deno.stdin.readable);"],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      Deno.writeTextFileSync(`${dir}/scheduler.pid`, `${child.pid}\n`);
      assert.throws(() => OutcomeJournal.open(dir, { name: "a" }), {
        name: "OutcomeJournalError",
        message: new RegExp(`is in use by a running scheduler \\(pid ${child.pid}\\)`),
      });
    } finally {
      await child.stdin.close();
      await child.status;
    }
    // Its process is gone now: the pid file is stale.
    const journal = OutcomeJournal.open(dir, { name: "a" });
    assert.equal(Deno.readTextFileSync(`${dir}/scheduler.pid`), `${Deno.pid}\n`);
    assert.throws(() => OutcomeJournal.open(dir, { name: "a" }), { message: /in use/ });
    journal.close();
    assert.throws(() => Deno.statSync(`${dir}/scheduler.pid`), Deno.errors.NotFound);
  });
});

Deno.test("OutcomeJournal says which state dir it cannot create", () =>
  withDir((dir) => {
    Deno.writeTextFileSync(`${dir}/file`, "");
    assert.throws(() => OutcomeJournal.open(`${dir}/file/sub`, { name: "a" }), {
      name: "OutcomeJournalError",
      message: new RegExp(`state dir ${dir}/file/sub: cannot create it: `),
    });
  }));

Deno.test("OutcomeJournal takes over a pid file whose pid is now a thread's or a newer process's", async () => {
  await withDir(async (dir) => {
    // A thread of this process: /proc/<tid> exists, but it is no process (the soak found it).
    const thread = [...Deno.readDirSync(`/proc/${Deno.pid}/task`)]
      .map((entry) => Number(entry.name)).find((tid) => tid !== Deno.pid);
    assert.ok(thread !== undefined, "a Deno process has threads");
    Deno.writeTextFileSync(`${dir}/scheduler.pid`, `${thread}\n`);
    OutcomeJournal.open(dir, { name: "a" }).close();
    // A live process started after the file was written: it got the pid later.
    Deno.writeTextFileSync(`${dir}/scheduler.pid`, "1\n");
    const old = new Date(Date.now() - 3600_000);
    const path = `${dir}/scheduler.pid`;
    await Deno.utime(path, old, old);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "for await (const _ of Deno.stdin.readable);"],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      Deno.writeTextFileSync(path, `${child.pid}\n`);
      await Deno.utime(path, old, old);
      OutcomeJournal.open(dir, { name: "a" }).close();
    } finally {
      await child.stdin.close();
      await child.status;
    }
  });
});

Deno.test("OutcomeJournal: without --allow-all (no /proc), a dead holder's directory is taken over, a live one's refused", async () => {
  await withDir(async (dir) => {
    const module = new URL("../../bus/outcome_journal.ts", import.meta.url).href;
    const script = `${dir}/open.ts`;
    Deno.writeTextFileSync(
      script,
      `import { OutcomeJournal } from "${module}";
       try { OutcomeJournal.open(${JSON.stringify(`${dir}/state`)}, { name: "a" }); }
       catch (error) { console.log(error.message); Deno.exit(3); }
       console.log("open"); for await (const _ of Deno.stdin.readable);`,
    );
    const open = (stdin: "piped" | "null" = "piped") =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-q", "--allow-read", "--allow-write", script],
        stdin,
        stdout: "piped",
        stderr: "null",
      }).spawn();
    // A stale pid file: a dead process's (a SIGKILLed scheduler's).
    Deno.mkdirSync(`${dir}/state`);
    const dead = new Deno.Command("true", { stdin: "null", stdout: "null", stderr: "null" })
      .spawn();
    await dead.status;
    Deno.writeTextFileSync(`${dir}/state/scheduler.pid`, `${dead.pid}\n`);
    const first = open();
    const reader = first.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value?.trim(), "open");
    const second = await open("null").output();
    assert.equal(second.code, 3);
    assert.match(new TextDecoder().decode(second.stdout), /is in use by a running scheduler/);
    await first.stdin.close();
    await reader.cancel();
    assert.equal((await first.status).code, 0);
  });
});
