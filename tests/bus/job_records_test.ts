import assert from "node:assert/strict";
import { JobRecords, MAX_HISTORY } from "../../bus/job_records.ts";
import { Dispatcher, type DispatcherJobEvent, type SchedulerPeer } from "../../bus/dispatcher.ts";
import type { BusJobState, JobPayload } from "../../bus/protocol.ts";

/** Feeds JobRecords as the server does; times come from a counter. */
class Feed {
  at = 1000;
  constructor(readonly records: JobRecords = new JobRecords()) {}

  submit(id: string, priority: number, extra: Record<string, unknown> = {}): void {
    const payload = { priority, runtime: 1, ...extra } as JobPayload;
    this.records.expect(payload);
    this.event(id, "queued", { priority, owner: String(extra.owner ?? "ann") });
    this.records.expect(undefined);
  }

  event(id: string, state: BusJobState, extra: Partial<DispatcherJobEvent> = {}): void {
    this.records.record({
      cmd: "event",
      id,
      state,
      at: this.at++,
      priority: 5,
      owner: "ann",
      ...extra,
    });
  }

  /** Submits, starts at `scheduler` and ends a job with `state` (and a result). */
  run(id: string, state: BusJobState, result?: Record<string, unknown>): void {
    this.submit(id, 5);
    this.records.dispatched(id, "n1");
    this.event(id, "started", { scheduler: "n1" });
    this.event(id, state, { scheduler: "n1", final: true, ...(result ? { result } : {}) });
  }

  ids(query: Parameters<JobRecords["list"]>[0] = {}): string[] {
    return this.records.list(query).jobs.map((job) => job.id);
  }
}

Deno.test("JobRecords follows a job from its submission to its end, attempts counted", () => {
  const feed = new Feed();
  feed.submit("j", 4, { name: "render" });
  const records = feed.records;
  assert.deepEqual(records.show("j"), {
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
  records.dispatched("j", "n1");
  feed.event("j", "started", { scheduler: "n1", priority: 4 });
  feed.event("j", "evicted", { scheduler: "n1", priority: 4, reason: "preempted by k" });
  feed.event("j", "requeued", { priority: 4, reason: "preempted by k" });
  records.dispatched("j", "n2");
  feed.event("j", "started", { scheduler: "n2", priority: 4 });
  const result = { exitCode: 3, signal: null, stdoutTail: "out", stderrTail: "err" };
  feed.event("j", "failed", { scheduler: "n2", priority: 4, result, final: true });
  const job = records.show("j")!;
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
  assert.equal(records.finished, 1);
  assert.equal(records.finishedTailChars, 6);
  // Later reports of a final job (a broadcast job's) change nothing.
  feed.event("j", "started", { scheduler: "n3" });
  assert.equal(records.show("j")!.history.length, 6);
  // Events of unknown jobs are ignored; so is a `queued` nobody announced.
  feed.event("nobody", "queued");
  feed.event("nobody", "started");
  assert.equal(records.show("nobody"), undefined);
});

Deno.test("JobRecords: a re-attached job is not a new attempt; set_priority shows", () => {
  const feed = new Feed();
  feed.submit("j", 6);
  feed.event("j", "started", { scheduler: "n1" });
  feed.event("j", "requeued", { reason: "scheduler lost" });
  feed.event("j", "started", { scheduler: "n1", reason: "reattached" });
  assert.equal(feed.records.show("j")!.attempts, 1);
  feed.submit("k", 6);
  feed.records.setPriority("k", 1);
  const k = feed.records.show("k")!;
  assert.equal(k.priority, 1);
  assert.equal(k.payload.priority, 1);
});

Deno.test("JobRecords.list: waiting in dispatch order, then running, then finished newest first", () => {
  const feed = new Feed();
  feed.run("done-1", "succeeded");
  feed.run("done-2", "failed");
  feed.submit("w5", 5);
  feed.submit("w1", 1);
  feed.submit("w5b", 5);
  feed.submit("r3", 3);
  feed.records.dispatched("r3", "n1");
  feed.event("r3", "started", { scheduler: "n1", priority: 3 });
  feed.submit("r0", 0);
  feed.records.dispatched("r0", "n1"); // at a scheduler that has not said `started` yet
  feed.submit("s2", 2);
  feed.event("s2", "started", { scheduler: "n2", priority: 2 }); // re-attached: no dispatch
  feed.event("s2", "suspended", { scheduler: "n2", priority: 2 });
  feed.submit("back", 9);
  feed.records.dispatched("back", "n1");
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
  const list = feed.records.list({}, (id) => id === "w1" ? "no scheduler connected" : undefined);
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
});

Deno.test("JobRecords.list filters by states (any of), name or id substring, owner; limit", () => {
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
  const limited = feed.records.list({ limit: 2 });
  assert.deepEqual(limited.jobs.map((job) => job.id), ["a-1", "a-2"]);
  assert.equal(limited.total, 5);
  assert.equal(feed.records.list({ limit: 2, states: ["queued"] }).total, 3);
});

Deno.test("JobRecords forgets the oldest finished jobs beyond maxFinished, never live ones", () => {
  const feed = new Feed(new JobRecords({ maxFinished: 3 }));
  feed.submit("live", 5);
  for (let i = 1; i <= 5; i++) feed.run(`f${i}`, "succeeded");
  assert.equal(feed.records.finished, 3);
  assert.equal(feed.records.size, 4);
  assert.deepEqual(feed.ids(), ["live", "f5", "f4", "f3"]);
  assert.equal(feed.records.show("f2"), undefined);
  assert.equal(feed.records.show("live")!.state, "queued");
});

Deno.test("JobRecords forgets the oldest finished jobs beyond maxFinishedTailChars", () => {
  const feed = new Feed(new JobRecords({ maxFinishedTailChars: 100 }));
  const tails = (n: number): Record<string, unknown> => ({
    stdoutTail: "o".repeat(n),
    stderrTail: "e".repeat(n),
  });
  feed.run("a", "succeeded", tails(20)); // 40
  feed.run("b", "succeeded", tails(20)); // 80
  feed.run("c", "succeeded"); // no tails
  assert.deepEqual(feed.ids(), ["c", "b", "a"]);
  feed.run("d", "failed", tails(15)); // 110 > 100: "a" goes
  assert.deepEqual(feed.ids(), ["d", "c", "b"]);
  assert.equal(feed.records.finishedTailChars, 70);
  feed.run("huge", "failed", tails(60)); // 120 alone: everything goes, itself too
  assert.deepEqual(feed.ids(), []);
  assert.equal(feed.records.finishedTailChars, 0);
  assert.equal(feed.records.finished, 0);
});

Deno.test("JobRecords keeps 10,000 finished jobs by default", () => {
  const feed = new Feed();
  for (let i = 0; i < 10_050; i++) feed.run(`j${i}`, "succeeded");
  assert.equal(feed.records.finished, 10_000);
  assert.equal(feed.records.show("j49"), undefined);
  assert.equal(feed.records.show("j50")!.state, "succeeded");
  const all = feed.records.list({ limit: 10_000 });
  assert.equal(all.total, 10_000);
  assert.equal(all.jobs[0]!.id, "j10049");
  // 10,000 summaries pass the default 1,000,000 bytes of an answer: the list stops before.
  const bytes = new TextEncoder().encode(JSON.stringify(all.jobs)).byteLength;
  assert.ok(all.jobs.length > 5000 && all.jobs.length < 10_000, `${all.jobs.length} jobs`);
  assert.ok(bytes <= 1_000_002 && bytes > 990_000, `${bytes} bytes`);
});

Deno.test("JobRecords keeps at most 100 history entries, the latest; cuts long reasons", () => {
  const feed = new Feed();
  feed.submit("j", 5);
  for (let i = 0; i < 120; i++) {
    feed.event("j", i % 2 ? "resumed" : "suspended", { reason: `r${i}` });
  }
  feed.event("j", "started", { reason: "x".repeat(5000) });
  const history = feed.records.show("j")!.history;
  assert.equal(history.length, MAX_HISTORY);
  assert.equal(history[0]!.reason, "r21");
  assert.equal(history[99]!.reason!.length, 512);
  assert.equal(feed.records.show("j")!.reason!.length, 5000); // the job's own reason: whole
});

Deno.test("JobRecords.list stays within maxListBytes; total counts every match", () => {
  const feed = new Feed(new JobRecords({ maxListBytes: 1000 }));
  for (let i = 0; i < 50; i++) feed.submit(`job-${i}`, 5, { name: "é".repeat(20) });
  const list = feed.records.list({ limit: 50 });
  assert.equal(list.total, 50);
  assert.ok(list.jobs.length > 0 && list.jobs.length < 10, `${list.jobs.length} jobs`);
  const bytes = new TextEncoder().encode(JSON.stringify(list.jobs)).byteLength;
  assert.ok(bytes <= 1000 + 2, `${bytes} bytes`); // + the brackets
});

Deno.test("JobRecords: an id used again after its job ended opens a new record", () => {
  const feed = new Feed(new JobRecords({ maxFinished: 5 }));
  feed.run("j", "succeeded", { stdoutTail: "abc" });
  feed.submit("j", 2);
  assert.equal(feed.records.finished, 0);
  assert.equal(feed.records.finishedTailChars, 0);
  assert.deepEqual(feed.records.show("j")!.history.map((h) => h.state), ["queued"]);
  assert.deepEqual(feed.ids(), ["j"]);
});

Deno.test("JobRecords fed by a Dispatcher keeps bus-assigned ids once final", () => {
  const records = new JobRecords();
  const sent: string[] = [];
  const dispatcher = new Dispatcher({
    onJobEvent: (event) => records.record(event),
    onDispatch: (info) => records.dispatched(info.id, info.scheduler),
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
    records.expect(payload);
    const result = dispatcher.submit({ owner: "ann", id, payload });
    records.expect(undefined);
    assert.ok(result.ok);
    return result.id;
  };
  const assigned = submit({ priority: 3, runtime: 1 });
  const given = submit({ priority: 3, runtime: 1 }, "mine"); // waits: equal, no preemption
  assert.deepEqual(records.list({}).jobs.map((job) => [job.id, job.state, job.scheduler]), [
    ["mine", "queued", undefined],
    [assigned, "queued", "n1"],
  ]);
  dispatcher.schedulerEvent("c1", { cmd: "event", id: assigned, state: "started" });
  dispatcher.schedulerEvent("c1", { cmd: "event", id: assigned, state: "succeeded" });
  assert.equal(dispatcher.job(assigned), undefined); // the dispatcher forgot it
  assert.equal(records.show(assigned)!.state, "succeeded"); // the records did not
  assert.equal(records.show(assigned)!.attempts, 1);
  assert.equal(sent.at(-1), given);
  assert.deepEqual(records.list({}).jobs.map((job) => job.id), [given, assigned]);
});

Deno.test("JobRecords rejects limits that are not positive integers", () => {
  assert.throws(() => new JobRecords({ maxFinished: 0 }), /'maxFinished' must be a positive/);
  assert.throws(() => new JobRecords({ maxFinishedTailChars: 1.5 }), /got 1.5/);
  assert.throws(() => new JobRecords({ maxListBytes: -1 }), /'maxListBytes'/);
});
