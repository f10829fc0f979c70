import assert from "node:assert/strict";
import {
  type CommitResult,
  type JobQuery,
  type JobStore,
  MAX_HISTORY,
} from "../../bus/job_store.ts";
import { StoreError } from "../../bus/store_errors.ts";
import { Dispatcher, type DispatcherJobEvent, type SchedulerPeer } from "../../bus/dispatcher.ts";
import type { BusJobState, JobPayload } from "../../bus/protocol.ts";

/** The options a contract test opens a store with. */
export interface ContractOptions {
  keepFinished?: { ms?: number; count?: number };
  maxListBytes?: number;
}

/**
 * Feeds a store as the bus does (accept + events, commits); times come from a counter. A commit
 * that answers with a Promise is not awaited here (the store runs its commits in order; reads
 * see the writes at once): {@linkcode Feed.close} awaits them all and checks they succeeded.
 */
export class Feed {
  at = 1000;
  jobSeq = 0;
  #pending: Promise<CommitResult>[] = [];
  constructor(readonly store: JobStore) {}

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
    if (result instanceof Promise) this.#pending.push(result);
    else assert.ok(result.ok, JSON.stringify(result));
  }

  /** Awaits the commits under way; each must have succeeded. */
  async settle(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    for (const result of await Promise.all(pending)) assert.ok(result.ok, JSON.stringify(result));
  }

  /** Settles, then closes the store. */
  async close(): Promise<void> {
    await this.settle();
    await this.store.close();
  }

  /** Submits, starts at `scheduler` and ends a job with `state` (and a result). */
  run(id: string, state: BusJobState, result?: Record<string, unknown>): void {
    this.submit(id, 5);
    this.store.dispatched(id, "n1", 1);
    this.event(id, "started", { scheduler: "n1" });
    this.event(id, state, { scheduler: "n1", final: true, ...(result ? { result } : {}) });
    this.commit();
  }

  ids(query: JobQuery = {}): string[] {
    return this.store.list(query).jobs.map((job) => job.id);
  }
}

/**
 * The store contract: every {@linkcode JobStore} passes these. `name` starts each test's name
 * ("SqliteStore", "PostgresStore"); `open` opens a new, empty store.
 */
export function storeContract(
  name: string,
  open: (options: ContractOptions) => Promise<JobStore>,
  ignore = false,
): void {
  const test = (suffix: string, fn: () => Promise<void>): void =>
    Deno.test({ name: `${name}${suffix}`, ignore, fn });
  const using = async (options: ContractOptions = {}): Promise<Feed> =>
    new Feed(await open(options));

  test(" follows a job from its submission to its end, attempts counted", async () => {
    const feed = await using();
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
    await feed.close();
  });

  test(": a re-attached job is not a new attempt; set_priority shows", async () => {
    const feed = await using();
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
    await feed.close();
  });

  test(".list: waiting in dispatch order, then running, then finished newest first", async () => {
    const feed = await using();
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
    await feed.close();
  });

  test(".list filters by states (any of), name or id substring, owner; limit", async () => {
    const feed = await using();
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
    await feed.close();
  });

  test(".prune forgets the oldest finished jobs beyond the count, never live ones", async () => {
    const feed = await using({ keepFinished: { count: 3 } });
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
    await feed.close();
  });

  test(".prune forgets finished jobs older than keepFinished.ms", async () => {
    const feed = await using({ keepFinished: { ms: 10 } });
    feed.run("a", "succeeded"); // ends at 1003
    feed.at = 2000;
    feed.run("b", "succeeded"); // ends at 2003
    assert.equal(feed.store.prune(2010), 1);
    feed.commit();
    assert.deepEqual(feed.ids(), ["b"]);
    await feed.close();
  });

  test(" keeps at most 100 history entries, the latest; cuts long reasons", async () => {
    const feed = await using();
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
    await feed.close();
  });

  test(".list stays within maxListBytes; total counts every match", async () => {
    const feed = await using({ maxListBytes: 1000 });
    for (let i = 0; i < 50; i++) feed.submit(`job-${i}`, 5, { name: "é".repeat(20) });
    const list = feed.store.list({ limit: 50 });
    assert.equal(list.total, 50);
    assert.ok(list.jobs.length > 0 && list.jobs.length < 10, `${list.jobs.length} jobs`);
    const bytes = new TextEncoder().encode(JSON.stringify(list.jobs)).byteLength;
    assert.ok(bytes <= 1000 + 2, `${bytes} bytes`); // + the brackets
    await feed.close();
  });

  test(": an id used again after its job ended opens a new job; a live one throws", async () => {
    const feed = await using();
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
    await feed.close();
  });

  test(" fed by a Dispatcher keeps bus-assigned ids once final", async () => {
    const feed = await using();
    const store = feed.store;
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
      feed.commit();
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
    feed.commit();
    await feed.close();
  });
}
