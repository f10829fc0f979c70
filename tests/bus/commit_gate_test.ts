import assert from "node:assert/strict";
import { CommitGate } from "../../bus/commit_gate.ts";
import { SqliteStore } from "../../bus/sqlite_store.ts";
import type { CommitResult, JobStore } from "../../bus/job_store.ts";
import { FakeClock } from "../fake_clock.ts";

/** One turn of the event loop: the gate's zero-delay commit timer fires. */
const turn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

const newJob = (id: string, seq: number) => ({
  id,
  owner: "p",
  givenId: true,
  payload: { priority: 3, runtime: 1 },
  seq,
  at: 1,
});

Deno.test("CommitGate: writes of one turn share one commit; outputs wait for it, in order", async () => {
  const store = new SqliteStore({ path: ":memory:" });
  const log: string[] = [];
  const gate = new CommitGate(store, {
    onCommit: (result) =>
      log.push(`commit ${result.ok ? (result as { writes: number }).writes : "failed"}`),
  });
  gate.send(() => log.push("clean: sent at once"));
  gate.store.accept(newJob("a", 0));
  gate.send(() => log.push("a"));
  gate.store.accept(newJob("b", 1));
  gate.send(() => log.push("b"));
  assert.equal(gate.dirty, true);
  assert.deepEqual(log, ["clean: sent at once"]);
  await turn();
  assert.deepEqual(log, ["clean: sent at once", "commit 2", "a", "b"]);
  assert.equal(gate.dirty, false);
  assert.equal(store.get("b")?.state, "queued");
  gate.close();
  store.close();
});

Deno.test("CommitGate: a failed commit still releases the outputs, and is retried later", async () => {
  let failing = true;
  const store = new SqliteStore({
    path: ":memory:",
    faults: {
      beforeCommit: () => {
        if (failing) throw new Error("disk I/O error");
      },
    },
  });
  const clock = new FakeClock();
  const results: CommitResult[] = [];
  const sent: string[] = [];
  const gate = new CommitGate(store, { onCommit: (r) => results.push(r), clock, retryMs: 500 });
  gate.store.accept(newJob("a", 0));
  gate.store.event({ cmd: "event", id: "x", state: "queued", at: 1, priority: 3, owner: "p" });
  gate.send(() => sent.push("out"));
  await turn();
  assert.equal(results.length, 1);
  assert.equal(results[0]!.ok, false);
  assert.deepEqual(!results[0]!.ok && results[0]!.rejected, ["a"]);
  assert.deepEqual(sent, ["out"]); // the bus keeps serving
  assert.equal(clock.pendingTimers, 1); // a retry is set
  failing = false;
  await clock.tick(500);
  assert.equal(results.length, 2);
  assert.equal(results[1]!.ok, true); // the kept event was written
  assert.equal(store.eventsAfter(0, undefined, 10).length, 1);
  assert.equal(store.get("a"), undefined); // the rejected job is nowhere
  gate.close();
  store.close();
});

Deno.test("CommitGate.schedule commits at the end of the turn even with nothing written", async () => {
  const store = new SqliteStore({ path: ":memory:" });
  let commits = 0;
  const gate = new CommitGate(store, { onCommit: () => commits++ });
  gate.schedule();
  gate.schedule(); // once per turn
  assert.equal(commits, 0);
  await turn();
  assert.equal(commits, 1);
  gate.close();
  store.close();
});

/** A SqliteStore whose commit answers with a Promise the test settles. */
class SlowStore {
  readonly inner = new SqliteStore({ path: ":memory:" });
  started = 0;
  #release: (() => void)[] = [];
  /** The store, but `commit` answers with a Promise. */
  readonly store: JobStore = new Proxy(this.inner, {
    get: (target, key) => {
      if (key === "commit") return () => this.#commit();
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  #commit(): Promise<CommitResult> {
    const result = this.inner.commit();
    this.started++;
    return new Promise((resolve) => this.#release.push(() => resolve(result)));
  }
  /** Settles the oldest commit under way. */
  release(): void {
    this.#release.shift()?.();
  }
  get waiting(): number {
    return this.#release.length;
  }
  /** Lets the gate's continuation run (a few turns of microtasks). */
  async released(): Promise<void> {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }
  close(): void {
    this.inner.close();
  }
}

Deno.test("CommitGate awaits a commit that answers with a Promise; outputs wait for it", async () => {
  const store = new SlowStore();
  const log: string[] = [];
  const gate = new CommitGate(store.store, {
    onCommit: (r) => log.push(`commit ${r.ok ? (r as { writes: number }).writes : "failed"}`),
  });
  gate.store.accept(newJob("a", 0));
  gate.send(() => log.push("a"));
  await turn();
  assert.equal(store.started, 1);
  assert.equal(gate.committing, true);
  assert.equal(log.length, 0); // held while PostgreSQL commits
  // Meanwhile: a write and an output of the next batch; no second commit starts yet.
  gate.store.accept(newJob("b", 1));
  gate.send(() => log.push("b"));
  await turn();
  assert.equal(store.started, 1);
  store.release();
  await store.released();
  assert.deepEqual(log, ["commit 1", "a"]);
  assert.equal(store.started, 2); // the next batch's commit, once the first ended
  store.release();
  await store.released();
  assert.deepEqual(log, ["commit 1", "a", "commit 1", "b"]);
  assert.equal(gate.committing, false);
  // An output with nothing written goes at once again.
  gate.send(() => log.push("c"));
  assert.equal(log.at(-1), "c");
  gate.close();
  store.close();
});

Deno.test("CommitGate: an output sent during a commit, with no write after, follows that commit", async () => {
  const store = new SlowStore();
  const log: string[] = [];
  const gate = new CommitGate(store.store, { onCommit: () => log.push("commit") });
  gate.store.accept(newJob("a", 0));
  await turn();
  gate.send(() => log.push("late"));
  assert.equal(log.length, 0);
  store.release();
  await store.released();
  assert.deepEqual(log, ["commit", "late"]);
  assert.equal(store.waiting, 0);
  assert.equal(store.started, 1);
  gate.close();
  store.close();
});
