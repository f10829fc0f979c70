import assert from "node:assert/strict";
import { MAX_HISTORY } from "../../bus/job_store.ts";
import { SqliteStore, type SqliteStoreOptions } from "../../bus/sqlite_store.ts";
import { StoreError } from "../../bus/store_errors.ts";
import { DatabaseSync } from "node:sqlite";
import { Dispatcher, type DispatcherJobEvent, type SchedulerPeer } from "../../bus/dispatcher.ts";
import type { BusJobState, JobPayload } from "../../bus/protocol.ts";

/** Feeds a SqliteStore as the bus does (accept + events, commits); times come from a counter. */
class Feed {
  at = 1000;
  jobSeq = 0;
  constructor(readonly store: SqliteStore = new SqliteStore({ path: ":memory:" })) {}

  submit(id: string, priority: number, extra: Record<string, unknown> = {}): void {
    const payload = { priority, runtime: 1, ...extra } as JobPayload;
    const owner = String(extra.owner ?? "ann");
    this.store.accept({ id, owner, givenId: true, payload, seq: this.jobSeq++, at: this.at });
    this.event(id, "queued", { priority, owner });
    this.commit();
  }

  event(id: string, state: BusJobState, extra: Partial<DispatcherJobEvent> = {}): number {
    return this.store.event({
      cmd: "event",
      id,
      state,
      at: this.at++,
      priority: 5,
      owner: "ann",
      ...extra,
    });
  }

  commit(): void {
    const result = this.store.commit();
    assert.ok(result.ok, JSON.stringify(result));
  }

  /** Submits, starts at `scheduler` and ends a job with `state` (and a result). */
  run(id: string, state: BusJobState, result?: Record<string, unknown>): void {
    this.submit(id, 5);
    this.store.dispatched(id, "n1", 1);
    this.event(id, "started", { scheduler: "n1" });
    this.event(id, state, { scheduler: "n1", final: true, ...(result ? { result } : {}) });
    this.commit();
  }

  ids(query: Parameters<SqliteStore["list"]>[0] = {}): string[] {
    return this.store.list(query).jobs.map((job) => job.id);
  }
}

function using(options: Partial<SqliteStoreOptions> = {}): Feed {
  return new Feed(new SqliteStore({ path: ":memory:", ...options }));
}

Deno.test("SqliteStore follows a job from its submission to its end, attempts counted", () => {
  const feed = new Feed();
  feed.submit("j", 4, { name: "render" });
  const store = feed.store;
  assert.deepEqual(store.show("j"), {
    id: "j",
    name: "render",
    priority: 4,
    state: "queued",
    owner: "ann",
    submittedAt: 1000,
    attempts: 0,
    payload: { priority: 4, runtime: 1, name: "render" },
    history: [{ state: "queued", at: 1000 }],
  });
  store.dispatched("j", "n1", 1);
  feed.event("j", "started", { scheduler: "n1", priority: 4 });
  feed.event("j", "evicted", { scheduler: "n1", priority: 4, reason: "preempted by k" });
  feed.event("j", "requeued", { priority: 4, reason: "preempted by k" });
  store.dispatched("j", "n2", 2);
  feed.event("j", "started", { scheduler: "n2", priority: 4 });
  const result = { exitCode: 3, signal: null, stdoutTail: "out", stderrTail: "err" };
  feed.event("j", "failed", { scheduler: "n2", priority: 4, result, final: true });
  feed.commit();
  const job = store.show("j")!;
  assert.equal(job.state, "failed");
  assert.equal(job.attempts, 2);
  assert.equal(job.scheduler, "n2");
  assert.equal(job.startedAt, 1004);
  assert.equal(job.endedAt, 1005);
  assert.deepEqual(job.result, result);
  assert.equal(job.reason, undefined); // the last event's reason
  assert.deepEqual(job.history.map((entry) => entry.state), [
    "queued",
    "started",
    "evicted",
    "requeued",
    "started",
    "failed",
  ]);
  assert.deepEqual(job.history[2], {
    state: "evicted",
    at: 1002,
    scheduler: "n1",
    reason: "preempted by k",
  });
  assert.equal(store.stats().finished, 1);
  const stored = store.get("j")!;
  assert.equal(stored.attempt, 2);
  assert.equal(stored.starts, 2);
  assert.equal(stored.final, true);
  // Later reports of a final job (a broadcast job's) change nothing, but are numbered and kept.
  const seq = feed.event("j", "started", { scheduler: "n3" });
  assert.equal(store.show("j")!.history.length, 6);
  assert.equal(store.eventsAfter(seq - 1, undefined, 10)[0]!.seq, seq);
  // Events of unknown jobs change no job; a `queued` without an acceptance opens none.
  feed.event("nobody", "queued");
  feed.event("nobody", "started");
  feed.commit();
  assert.equal(store.show("nobody"), undefined);
  store.close();
});

Deno.test("SqliteStore: a re-attached job is not a new attempt; set_priority shows", () => {
  const feed = new Feed();
  feed.submit("j", 6);
  feed.event("j", "started", { scheduler: "n1" });
  feed.event("j", "requeued", { reason: "scheduler lost" });
  feed.event("j", "started", { scheduler: "n1", reason: "reattached" });
  assert.equal(feed.store.show("j")!.attempts, 1);
  feed.submit("k", 6);
  feed.store.setPriority("k", 1);
  const k = feed.store.show("k")!;
  assert.equal(k.priority, 1);
  assert.equal(k.payload.priority, 1);
  assert.equal(feed.store.get("k")!.payload.priority, 1);
  feed.store.close();
});

Deno.test("SqliteStore.list: waiting in dispatch order, then running, then finished newest first", () => {
  const feed = new Feed();
  feed.run("done-1", "succeeded");
  feed.run("done-2", "failed");
  feed.submit("w5", 5);
  feed.submit("w1", 1);
  feed.submit("w5b", 5);
  feed.submit("r3", 3);
  feed.store.dispatched("r3", "n1", 1);
  feed.event("r3", "started", { scheduler: "n1", priority: 3 });
  feed.submit("r0", 0);
  feed.store.dispatched("r0", "n1", 1); // at a scheduler that has not said `started` yet
  feed.submit("s2", 2);
  feed.event("s2", "started", { scheduler: "n2", priority: 2 }); // re-attached: no dispatch
  feed.event("s2", "suspended", { scheduler: "n2", priority: 2 });
  feed.submit("back", 9);
  feed.store.dispatched("back", "n1", 1);
  feed.event("back", "requeued", { priority: 9, reason: "scheduler lost" });
  assert.deepEqual(feed.ids(), [
    "w1",
    "w5",
    "w5b",
    "back",
    "r0",
    "s2",
    "r3",
    "done-2",
    "done-1",
  ]);
  const list = feed.store.list({}, (id) => id === "w1" ? "no scheduler connected" : undefined);
  assert.equal(list.total, 9);
  assert.equal(list.jobs[0]!.waiting, "no scheduler connected");
  assert.deepEqual(list.jobs[4], {
    id: "r0",
    priority: 0,
    state: "queued",
    owner: "ann",
    scheduler: "n1",
    submittedAt: list.jobs[4]!.submittedAt,
    attempts: 0,
  });
  assert.equal(list.jobs[8]!.endedAt! < list.jobs[7]!.endedAt!, true);
  assert.equal(feed.store.get("r0")!.state, "dispatched");
  feed.store.close();
});

Deno.test("SqliteStore.list filters by states (any of), name or id substring, owner; limit", () => {
  const feed = new Feed();
  feed.submit("a-1", 5, { name: "render frames", owner: "ann" });
  feed.submit("a-2", 5, { name: "train", owner: "bob" });
  feed.submit("render-3", 5, { owner: "bob" });
  feed.run("a-4", "succeeded");
  feed.run("a-5", "timed_out");
  assert.deepEqual(feed.ids({ name: "render" }), ["a-1", "render-3"]);
  assert.deepEqual(feed.ids({ owner: "bob" }), ["a-2", "render-3"]);
  assert.deepEqual(feed.ids({ owner: "bob", name: "ain" }), ["a-2"]);
  assert.deepEqual(feed.ids({ states: ["succeeded", "timed_out"] }), ["a-5", "a-4"]);
  assert.deepEqual(feed.ids({ states: ["started"] }), []);
  const limited = feed.store.list({ limit: 2 });
  assert.deepEqual(limited.jobs.map((job) => job.id), ["a-1", "a-2"]);
  assert.equal(limited.total, 5);
  assert.equal(feed.store.list({ limit: 2, states: ["queued"] }).total, 3);
  feed.store.close();
});

Deno.test("SqliteStore.prune forgets the oldest finished jobs beyond the count, never live ones", () => {
  const feed = using({ keepFinished: { count: 3 } });
  feed.submit("live", 5);
  for (let i = 1; i <= 5; i++) feed.run(`f${i}`, "succeeded");
  const before = feed.store.firstSeq;
  assert.equal(feed.store.prune(feed.at), 2);
  feed.commit();
  assert.equal(feed.store.stats().finished, 3);
  assert.equal(feed.store.stats().jobs, 4);
  assert.deepEqual(feed.ids(), ["live", "f5", "f4", "f3"]);
  assert.equal(feed.store.show("f2"), undefined);
  assert.equal(feed.store.show("live")!.state, "queued");
  assert.ok(feed.store.firstSeq > before);
  // The pruned jobs' events are gone; the live job's first event stays.
  const events = feed.store.eventsAfter(0, undefined, 1000);
  assert.equal(events.some((e) => e.id === "f2" || e.id === "f1"), false);
  assert.equal(events[0]!.id, "live");
  assert.equal(feed.store.prune(feed.at), 0);
  feed.store.close();
});

Deno.test("SqliteStore.prune forgets finished jobs older than keepFinished.ms", () => {
  const feed = using({ keepFinished: { ms: 10 } });
  feed.run("a", "succeeded"); // ends at 1003
  feed.at = 2000;
  feed.run("b", "succeeded"); // ends at 2003
  assert.equal(feed.store.prune(2010), 1);
  feed.commit();
  assert.deepEqual(feed.ids(), ["b"]);
  feed.store.close();
});

Deno.test("SqliteStore keeps 10,000 finished jobs when told; list stays within its bytes", () => {
  const feed = using({ keepFinished: { count: 10_000 } });
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
  feed.store.close();
});

Deno.test("SqliteStore keeps at most 100 history entries, the latest; cuts long reasons", () => {
  const feed = new Feed();
  feed.submit("j", 5);
  for (let i = 0; i < 120; i++) {
    feed.event("j", i % 2 ? "resumed" : "suspended", { reason: `r${i}` });
  }
  feed.event("j", "started", { reason: "x".repeat(5000) });
  const history = feed.store.show("j")!.history;
  assert.equal(history.length, MAX_HISTORY);
  assert.equal(history[0]!.reason, "r21");
  assert.equal(history[99]!.reason!.length, 512);
  assert.equal(feed.store.show("j")!.reason!.length, 5000); // the job's own reason: whole
  feed.store.close();
});

Deno.test("SqliteStore.list stays within maxListBytes; total counts every match", () => {
  const feed = using({ maxListBytes: 1000 });
  for (let i = 0; i < 50; i++) feed.submit(`job-${i}`, 5, { name: "é".repeat(20) });
  const list = feed.store.list({ limit: 50 });
  assert.equal(list.total, 50);
  assert.ok(list.jobs.length > 0 && list.jobs.length < 10, `${list.jobs.length} jobs`);
  const bytes = new TextEncoder().encode(JSON.stringify(list.jobs)).byteLength;
  assert.ok(bytes <= 1000 + 2, `${bytes} bytes`); // + the brackets
  feed.store.close();
});

Deno.test("SqliteStore: an id used again after its job ended opens a new job; a live one throws", () => {
  const feed = new Feed();
  feed.run("j", "succeeded", { stdoutTail: "abc" });
  feed.submit("j", 2);
  assert.equal(feed.store.stats().finished, 0);
  assert.deepEqual(feed.store.show("j")!.history.map((h) => h.state), ["queued"]);
  assert.deepEqual(feed.ids(), ["j"]);
  assert.throws(
    () => feed.submit("j", 2),
    (error) =>
      error instanceof StoreError && /j: a job with this id has not ended/.test(error.message),
  );
  feed.store.close();
});

Deno.test("SqliteStore fed by a Dispatcher keeps bus-assigned ids once final", () => {
  const store = new SqliteStore({ path: ":memory:" });
  const sent: string[] = [];
  let expected: JobPayload | undefined;
  let jobSeq = 0;
  const dispatcher: Dispatcher = new Dispatcher({
    onJobEvent: (event) => {
      if (event.state === "queued" && expected !== undefined) {
        const job = { id: event.id, owner: event.owner, givenId: false, payload: expected };
        store.accept({ ...job, seq: jobSeq++, at: event.at });
        expected = undefined;
      }
      store.event(event);
    },
    onDispatch: (info) =>
      store.dispatched(info.id, info.scheduler, dispatcher.job(info.id)?.attempts ?? 1),
  });
  const peer: SchedulerPeer = {
    client: "c1",
    name: "n1",
    protocol: 2,
    slots: 1,
    canSend: () => true,
    sendJob: (id) => sent.push(id),
    sendCancel: () => {},
  };
  dispatcher.addScheduler(peer);
  const submit = (payload: JobPayload, id?: string): string => {
    expected = payload;
    const result = dispatcher.submit({ owner: "ann", id, payload });
    expected = undefined;
    assert.ok(store.commit().ok);
    assert.ok(result.ok);
    return result.id;
  };
  const assigned = submit({ priority: 3, runtime: 1 });
  const given = submit({ priority: 3, runtime: 1 }, "mine"); // waits: equal, no preemption
  assert.deepEqual(store.list({}).jobs.map((job) => [job.id, job.state, job.scheduler]), [
    ["mine", "queued", undefined],
    [assigned, "queued", "n1"],
  ]);
  dispatcher.schedulerEvent("c1", { cmd: "event", id: assigned, state: "started" });
  dispatcher.schedulerEvent("c1", { cmd: "event", id: assigned, state: "succeeded" });
  assert.equal(dispatcher.job(assigned)?.state, "succeeded"); // no longer live: from the store
  assert.equal(store.show(assigned)!.state, "succeeded"); // the store did not
  assert.equal(store.show(assigned)!.attempts, 1);
  assert.equal(store.get(assigned)!.givenId, false);
  assert.equal(sent.at(-1), given);
  assert.deepEqual(store.list({}).jobs.map((job) => job.id), [given, assigned]);
  assert.ok(store.commit().ok);
  store.close();
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
