import assert from "node:assert/strict";
import { SqliteStore, type SqliteStoreOptions } from "../../bus/sqlite_store.ts";
import { Feed, storeContract } from "./store_contract.ts";
import { StoreError } from "../../bus/store_errors.ts";
import { DatabaseSync } from "node:sqlite";
import type { JobPayload } from "../../bus/protocol.ts";

storeContract(
  "SqliteStore",
  (options) => Promise.resolve(new SqliteStore({ path: ":memory:", ...options })),
);

Deno.test("SqliteStore keeps 10,000 finished jobs when told; list stays within its bytes", async () => {
  const feed = new Feed(new SqliteStore({ path: ":memory:", keepFinished: { count: 10_000 } }));
  for (let i = 0; i < 10_050; i++) feed.run(`j${i}`, "succeeded");
  feed.store.prune(feed.at);
  feed.commit();
  assert.equal(feed.store.stats().finished, 10_000);
  assert.equal(feed.store.show("j49"), undefined);
  assert.equal(feed.store.show("j50")!.state, "succeeded");
  const all = feed.store.list({ limit: 10_000 });
  assert.equal(all.total, 10_000);
  assert.equal(all.jobs[0]!.id, "j10049");
  // 10,000 summaries pass the default 1,000,000 bytes of an answer: the list stops before.
  const bytes = new TextEncoder().encode(JSON.stringify(all.jobs)).byteLength;
  assert.ok(all.jobs.length > 5000 && all.jobs.length < 10_000, `${all.jobs.length} jobs`);
  assert.ok(bytes <= 1_000_002 && bytes > 990_000, `${bytes} bytes`);
  await feed.close();
});

Deno.test("SqliteStore rejects options out of range", () => {
  const open = (options: Partial<SqliteStoreOptions>) => () =>
    new SqliteStore({ path: ":memory:", ...options });
  assert.throws(open({ keepFinished: { count: 0 } }), /'keepFinished.count' must be a positive/);
  assert.throws(open({ keepFinished: { ms: 1.5 } }), /got 1.5/);
  assert.throws(open({ maxListBytes: -1 }), /'maxListBytes'/);
  assert.throws(open({ sync: "off" as "full" }), /'sync' must be "full" or "normal"/);
});

const payload: JobPayload = { priority: 5, runtime: 1 };

function accept(store: SqliteStore, id: string, seq: number, owner = "ann"): number {
  store.accept({ id, owner, givenId: true, payload, seq, at: 1000 + seq });
  return store.event({ cmd: "event", id, state: "queued", at: 1000 + seq, priority: 5, owner });
}

Deno.test("SqliteStore: a failed commit rejects its acceptances, keeps and retries the other writes", () => {
  let full = false;
  const store = new SqliteStore({
    path: ":memory:",
    faults: {
      beforeCommit: () => {
        if (full) throw new Error("database or disk is full");
      },
    },
  });
  accept(store, "old", 0);
  assert.deepEqual(store.commit().ok, true);
  full = true;
  accept(store, "new", 1);
  store.dispatched("old", "n1", 1);
  const started = store.event({
    cmd: "event",
    id: "old",
    state: "started",
    at: 2000,
    priority: 5,
    owner: "ann",
    scheduler: "n1",
  });
  const failed = store.commit();
  assert.deepEqual(failed, {
    ok: false,
    reason: "store unavailable: database or disk is full",
    rejected: ["new"],
  });
  assert.equal(store.get("new"), undefined);
  assert.equal(store.stats().unavailable, true);
  // The kept writes are applied again at once: reads see them.
  assert.equal(store.get("old")!.state, "started");
  assert.deepEqual(store.eventsAfter(0, undefined, 10).map((e) => [e.id, e.state, e.seq]), [
    ["old", "queued", 1],
    ["old", "started", started],
  ]);
  // A seq handed out is never used again, even after the rollback.
  assert.equal(accept(store, "later", 2), started + 1);
  assert.equal(store.commit().ok, false);
  full = false;
  const ok = store.commit();
  assert.ok(ok.ok && ok.writes === 2, JSON.stringify(ok)); // dispatched + started, kept twice
  assert.equal(store.stats().unavailable, false);
  assert.equal(store.stats().failedCommits, 2);
  assert.equal(store.get("later"), undefined);
  assert.equal(store.get("old")!.scheduler, "n1");
  assert.deepEqual(store.unfinished().map((job) => job.id), ["old"]);
  assert.deepEqual(store.commit(), { ok: true, ms: 0, writes: 0 }); // nothing staged: cheap
  store.close();
});

Deno.test("SqliteStore: a write that throws fails its batch without throwing to the caller", () => {
  let failing = false;
  const store = new SqliteStore({
    path: ":memory:",
    faults: {
      beforeWrite: () => {
        if (failing) throw new Error("disk I/O error");
      },
    },
  });
  accept(store, "a", 0);
  failing = true;
  accept(store, "b", 1); // throws inside: the batch fails
  const result = store.commit();
  assert.equal(result.ok, false);
  assert.ok(!result.ok && result.reason === "store unavailable: disk I/O error");
  assert.ok(!result.ok && result.rejected.join() === "a,b");
  failing = false;
  assert.equal(store.get("a"), undefined);
  accept(store, "c", 2);
  assert.ok(store.commit().ok);
  assert.deepEqual(store.unfinished().map((job) => job.id), ["c"]);
  assert.equal(store.stats().staged, 0);
  store.close();
});

Deno.test("SqliteStore on a file: a reopened store has the jobs, the seqs and the order", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/bus.sqlite`;
    const store = new SqliteStore({ path, sync: "normal" });
    for (let i = 0; i < 5; i++) accept(store, `j${i}`, i, i % 2 ? "bob" : "ann");
    store.setPriority("j3", 1);
    store.retried("j2", 1, { exitCode: 1 });
    assert.ok(store.commit().ok);
    accept(store, "staged", 9); // not committed: gone with the close
    store.close();
    store.close(); // idempotent
    assert.throws(() => store.get("j1"), StoreError);
    const again = new SqliteStore({ path });
    assert.equal(again.lastSeq, 5); // the staged event was never committed, so never sent
    assert.equal(again.lastJobSeq, 4);
    assert.equal(again.firstSeq, 1);
    assert.deepEqual(again.unfinished().map((job) => job.id), ["j0", "j1", "j2", "j3", "j4"]);
    assert.deepEqual(again.list({}).jobs.map((job) => job.id), ["j3", "j0", "j1", "j2", "j4"]);
    assert.deepEqual(again.get("j2")!.lastResult, { exitCode: 1 });
    assert.equal(again.get("j2")!.failures, 1);
    assert.deepEqual(again.eventsAfter(1, "bob", 10).map((e) => e.id), ["j1", "j3"]);
    assert.deepEqual(again.eventsAfter(0, undefined, 2).map((e) => e.seq), [1, 2]);
    assert.equal(again.stats().kind, "sqlite");
    assert.equal(again.stats().events, 5);
    again.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("SqliteStore refuses a database whose schema is newer than it knows", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/bus.sqlite`;
    new SqliteStore({ path }).close();
    const db = new DatabaseSync(path);
    db.exec("PRAGMA user_version = 99");
    db.close();
    assert.throws(
      () => new SqliteStore({ path }),
      (error) => error instanceof StoreError && /schema version 99 is newer/.test(error.message),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
