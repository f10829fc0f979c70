import assert from "node:assert/strict";
import {
  Dispatcher,
  type DispatcherJobEvent,
  type DispatcherOptions,
  type SchedulerPeer,
} from "../../bus/dispatcher.ts";
import type { SchedulerJobState } from "../../bus/protocol.ts";
import { FakeClock } from "../fake_clock.ts";
import { SqliteStore } from "../../bus/sqlite_store.ts";

class FakePeer implements SchedulerPeer {
  jobs: string[] = [];
  attempts: number[] = [];
  cancels: [string, string][] = [];
  writable = true;
  labels: Record<string, string> | undefined;
  commands: string[] | undefined;
  constructor(
    readonly client: string,
    readonly protocol: 1 | 2 = 2,
    readonly slots = 1,
    readonly name = client,
  ) {}
  canSend(): boolean {
    return this.writable;
  }
  sendJob(id: string, _payload: unknown, attempt: number): void {
    this.jobs.push(id);
    this.attempts.push(attempt);
  }
  sendCancel(id: string, reason: string): void {
    this.cancels.push([id, reason]);
  }
}

function setup(options: DispatcherOptions = {}): {
  bus: Dispatcher;
  clock: FakeClock;
  events: DispatcherJobEvent[];
  submit: (id: string, priority: number, owner?: string) => void;
  report: (peer: FakePeer, id: string, state: SchedulerJobState) => void;
  states: (id: string) => string[];
} {
  const clock = new FakeClock();
  const events: DispatcherJobEvent[] = [];
  const bus = new Dispatcher({ clock, onJobEvent: (e) => events.push(e), ...options });
  return {
    bus,
    clock,
    events,
    submit: (id, priority, owner = "p") => {
      const result = bus.submit({ owner, id, payload: { priority, runtime: 1 } });
      assert.ok(result.ok, `submit ${id}`);
    },
    report: (peer, id, state) => bus.schedulerEvent(peer.client, { cmd: "event", id, state }),
    states: (id) => events.filter((e) => e.id === id).map((e) => e.state),
  };
}

Deno.test("Dispatcher gives each job to one scheduler, most free slots first, within credits", () => {
  const { bus, submit } = setup();
  const a = new FakePeer("a", 2, 2);
  const b = new FakePeer("b", 2, 3);
  bus.addScheduler(a);
  bus.addScheduler(b);
  for (let i = 0; i < 6; i++) submit(`j${i}`, 5);
  assert.deepEqual(b.jobs, ["j0", "j2", "j4"]); // b: 3 free, then 2 (tie with a: first added wins)
  assert.deepEqual(a.jobs, ["j1", "j3"]);
  assert.deepEqual(bus.queuedIds(), ["j5"]); // no credit left, not more urgent than anything
  assert.equal(bus.job("j5")?.state, "queued");
  assert.deepEqual(bus.stats(), {
    received: 6,
    delivered: 5,
    queued: 1,
    seedSchedulers: 0,
    v2Schedulers: 2,
  });
});

Deno.test("Dispatcher sends the next job when a final event frees a credit", () => {
  const { bus, submit, report, states } = setup();
  const a = new FakePeer("a");
  bus.addScheduler(a);
  submit("j1", 5);
  submit("j2", 5);
  report(a, "j1", "started");
  assert.deepEqual(a.jobs, ["j1"]);
  report(a, "j1", "succeeded");
  assert.deepEqual(a.jobs, ["j1", "j2"]);
  assert.deepEqual(states("j1"), ["queued", "started", "succeeded"]);
  assert.equal(bus.status().outcomes.succeeded, 1);
  assert.equal(bus.status().schedulers[0]?.free, 0);
});

Deno.test("Dispatcher preemption picks the least urgent job anywhere, latest started among equals", async () => {
  const { bus, clock, submit, report, states } = setup();
  const a = new FakePeer("a", 2, 2);
  const b = new FakePeer("b", 2, 2);
  bus.addScheduler(a);
  bus.addScheduler(b);
  submit("a3", 3); // -> a
  submit("b7old", 7); // -> b
  submit("a5", 5); // -> a
  submit("b7new", 7); // -> b
  for (const [peer, id] of [[a, "a3"], [b, "b7old"], [a, "a5"], [b, "b7new"]] as const) {
    report(peer, id, "started");
    await clock.tick(10);
  }
  submit("u1", 1);
  assert.deepEqual(b.jobs.at(-1), "u1"); // beyond b's credit: a preemptor for b7new
  submit("u2", 1);
  assert.deepEqual(b.jobs.at(-1), "u2"); // b7new is marked: next victim is b7old, also on b
  submit("u3", 1);
  assert.deepEqual(a.jobs.at(-1), "u3"); // then a5 on a
  submit("u4", 4); // not more urgent than a3: waits
  assert.deepEqual(bus.queuedIds(), ["u4"]);
  report(b, "b7new", "evicted");
  assert.deepEqual(states("b7new"), ["queued", "started", "evicted", "requeued"]);
  assert.deepEqual(bus.queuedIds(), ["u4", "b7new"]);
  submit("v6", 6); // no unmarked victim less urgent than 6 except... a3 is 3: waits
  assert.deepEqual(bus.queuedIds(), ["u4", "v6", "b7new"]);
});

Deno.test("Dispatcher does not send a second preemptor before the victim's eviction arrives", () => {
  const { bus, submit, report } = setup();
  const a = new FakePeer("a", 2, 1);
  bus.addScheduler(a);
  submit("low", 9);
  report(a, "low", "started");
  submit("hi1", 1);
  submit("hi2", 1);
  assert.deepEqual(a.jobs, ["low", "hi1"]);
  assert.deepEqual(bus.queuedIds(), ["hi2"]);
  report(a, "low", "evicted"); // a now runs hi1 only: full, and hi1 is not less urgent
  assert.deepEqual(bus.queuedIds(), ["hi2", "low"]);
  report(a, "hi1", "succeeded");
  assert.deepEqual(a.jobs, ["low", "hi1", "hi2"]);
});

Deno.test("Dispatcher requeues an evicted job in its original place among equals", () => {
  const { bus, submit, report } = setup();
  const a = new FakePeer("a", 2, 1);
  bus.addScheduler(a);
  submit("first", 5);
  submit("second", 5);
  submit("third", 5);
  a.writable = false; // hold the queue still to look at it
  report(a, "first", "evicted");
  assert.deepEqual(bus.queuedIds(), ["first", "second", "third"]);
  a.writable = true;
  bus.pump();
  assert.deepEqual(a.jobs, ["first", "first"]); // the freed slot takes the queue's head again
});

Deno.test("Dispatcher ends a job evicted with requeue: false as evicted, freeing its slot", () => {
  const { bus, submit, states } = setup();
  const a = new FakePeer("a", 2, 1);
  bus.addScheduler(a);
  submit("low", 9);
  submit("next", 9);
  bus.schedulerEvent("a", { cmd: "event", id: "low", state: "evicted", requeue: false });
  assert.deepEqual(states("low"), ["queued", "evicted"]);
  assert.deepEqual(a.jobs, ["low", "next"]);
  assert.deepEqual(bus.cancel("p", "low"), { ok: false, reason: "job already evicted" });
  assert.equal(bus.status().outcomes.evicted, 1);
});

Deno.test("Dispatcher frees a credit for a suspended job and takes it back on resume", () => {
  const { bus, submit, report } = setup();
  const a = new FakePeer("a", 2, 1);
  bus.addScheduler(a);
  submit("x", 8);
  submit("y", 8);
  report(a, "x", "suspended");
  assert.deepEqual(a.jobs, ["x", "y"]);
  report(a, "x", "resumed");
  assert.equal(bus.status().schedulers[0]?.free, -1);
});

Deno.test("Dispatcher requeues a lost scheduler's jobs; they go to another after the fence", async () => {
  const { bus, submit, report, states, clock } = setup();
  const a = new FakePeer("a", 2, 2);
  bus.addScheduler(a);
  submit("j1", 5);
  submit("j2", 5);
  report(a, "j1", "started");
  bus.removeScheduler("a");
  assert.equal(states("j1").at(-1), "requeued");
  const b = new FakePeer("b", 2, 2);
  bus.addScheduler(b);
  assert.deepEqual(b.jobs, []); // a's processes may still run: not yet (lostFenceMs)
  await clock.tick(999);
  assert.deepEqual(b.jobs, []);
  await clock.tick(1);
  assert.deepEqual(b.jobs, ["j1", "j2"]);
});

Deno.test("Dispatcher: a lost scheduler back within the fence keeps its job; a cancel meanwhile ends it", async () => {
  const { bus, submit, report, states, clock } = setup();
  const a = new FakePeer("c1", 2, 2, "node");
  bus.addScheduler(a);
  submit("kept", 5);
  submit("gone", 5);
  report(a, "kept", "started");
  bus.removeScheduler("c1");
  assert.deepEqual(bus.cancel("p", "gone"), { ok: true });
  assert.equal(states("gone").at(-1), "cancelled");
  const back = new FakePeer("c2", 2, 2, "node");
  bus.addScheduler(back, ["kept"]);
  assert.equal(bus.job("kept")?.scheduler, "node");
  await clock.tick(5000);
  assert.deepEqual(back.jobs, []); // re-attached, never sent again
  assert.deepEqual(back.cancels, []);
});

Deno.test("Dispatcher handles a reconnecting scheduler's reported jobs", () => {
  const { bus, submit, report, states } = setup({ lostFenceMs: 0 });
  const old = new FakePeer("c1", 2, 3, "node");
  bus.addScheduler(old);
  for (const id of ["given", "back", "done"]) submit(id, 5);
  report(old, "done", "succeeded");
  bus.removeScheduler("c1"); // given, back requeued
  const other = new FakePeer("c2", 2, 1, "other");
  bus.addScheduler(other); // takes "given"
  assert.deepEqual(other.jobs, ["given"]);
  const again = new FakePeer("c3", 2, 3, "node");
  bus.addScheduler(again, ["given", "back", "done", "ghost"]);
  assert.deepEqual(again.cancels, [["given", "reassigned"], ["done", "reassigned"], [
    "ghost",
    "unknown job",
  ]]);
  assert.deepEqual(again.jobs, []); // "back" was re-attached, not sent again
  assert.deepEqual(bus.queuedIds(), []);
  assert.equal(bus.job("back")?.scheduler, "node");
  assert.deepEqual(states("back").slice(-2), ["requeued", "started"]);
  report(again, "back", "succeeded");
  assert.equal(bus.job("back")?.state, "succeeded");
});

Deno.test("Dispatcher moves jobs from a still-open connection of the same scheduler name", () => {
  const { bus, submit } = setup();
  const old = new FakePeer("c1", 2, 1, "node");
  bus.addScheduler(old);
  submit("j", 5);
  const fresh = new FakePeer("c2", 2, 1, "node");
  bus.addScheduler(fresh, ["j"]);
  assert.deepEqual(fresh.cancels, []);
  bus.removeScheduler("c1"); // the old connection dies late: nothing to requeue
  assert.deepEqual(bus.queuedIds(), []);
  assert.equal(bus.job("j")?.scheduler, "node");
});

Deno.test("Dispatcher prefers v2 free slots, then seed schedulers round-robin (delivered)", () => {
  const { bus, submit, states } = setup();
  const s1 = new FakePeer("s1", 1);
  const s2 = new FakePeer("s2", 1);
  const v2 = new FakePeer("v", 2, 1);
  bus.addScheduler(s1);
  bus.addScheduler(s2);
  bus.addScheduler(v2);
  for (let i = 0; i < 4; i++) submit(`j${i}`, 3);
  assert.deepEqual(v2.jobs, ["j0"]);
  assert.deepEqual(s1.jobs, ["j1", "j3"]);
  assert.deepEqual(s2.jobs, ["j2"]);
  assert.deepEqual(states("j1"), ["queued", "delivered"]);
  assert.equal(bus.stats().seedSchedulers, 2);
});

Deno.test("Dispatcher in broadcast mode gives every job to every scheduler, once one is there", () => {
  const { bus, submit, states } = setup({ broadcast: true });
  submit("j1", 3);
  assert.deepEqual(bus.queuedIds(), ["j1"]);
  const seed = new FakePeer("s", 1);
  const v2 = new FakePeer("v", 2, 1);
  bus.addScheduler(seed);
  assert.deepEqual(seed.jobs, ["j1"]);
  bus.addScheduler(v2);
  submit("j2", 3);
  submit("j3", 3);
  assert.deepEqual(seed.jobs, ["j1", "j2", "j3"]);
  assert.deepEqual(v2.jobs, ["j2", "j3"]); // no credits in broadcast
  assert.deepEqual(states("j2"), ["queued", "delivered"]);
  bus.schedulerEvent("v", { cmd: "event", id: "j2", state: "succeeded" }); // forwarded only
  assert.deepEqual(states("j2"), ["queued", "delivered", "succeeded"]);
});

Deno.test("Dispatcher rejects new jobs beyond maxQueue but always takes requeued ones back", () => {
  const { bus, submit, report } = setup({ lostFenceMs: 0, maxQueue: 2 });
  const a = new FakePeer("a", 2, 1);
  bus.addScheduler(a);
  submit("run", 5);
  submit("w1", 5);
  submit("w2", 5);
  assert.deepEqual(bus.submit({ owner: "p", id: "w3", payload: { priority: 0, runtime: 1 } }), {
    ok: false,
    reason: "queue full",
  });
  report(a, "run", "evicted");
  assert.equal(bus.queueLength, 2); // "run" was requeued, then handed out again at once
  bus.removeScheduler("a");
  assert.equal(bus.queueLength, 3); // over the bound: never dropped
});

Deno.test("Dispatcher cancels waiting jobs at once and asks the scheduler for running ones", () => {
  const { bus, submit, report, states, events } = setup();
  const a = new FakePeer("a", 2, 1);
  bus.addScheduler(a);
  submit("run", 5);
  submit("wait", 5);
  assert.deepEqual(bus.cancel("p", "wait"), { ok: true });
  assert.deepEqual(states("wait"), ["queued", "cancelled"]);
  assert.equal(events.at(-1)?.reason, "cancelled by its owner"); // neutral: submit or jobs cancel
  assert.deepEqual(bus.cancel("p", "run"), { ok: true });
  assert.deepEqual(a.cancels, [["run", "cancelled by its owner"]]);
  assert.deepEqual(bus.cancel("p", "run"), { ok: true }); // idempotent, not sent twice
  assert.equal(a.cancels.length, 1);
  report(a, "run", "cancelled");
  assert.deepEqual(bus.cancel("p", "run"), { ok: false, reason: "job already cancelled" });
  assert.deepEqual(bus.cancel("q", "wait"), { ok: false, reason: "not your job" });
  assert.deepEqual(bus.cancel("p", "nope"), { ok: false, reason: "unknown job" });
});

Deno.test("Dispatcher finishes a job whose cancel was pending when its scheduler is lost", () => {
  const { bus, submit, states } = setup();
  bus.addScheduler(new FakePeer("a"));
  submit("run", 5);
  bus.cancel("p", "run");
  bus.removeScheduler("a");
  assert.deepEqual(states("run"), ["queued", "cancelled"]);
  assert.equal(bus.queueLength, 0);
});

Deno.test("Dispatcher set_priority moves a waiting job and refuses a running one", () => {
  const { bus, submit } = setup();
  const a = new FakePeer("a", 2, 1);
  bus.addScheduler(a);
  submit("run", 1);
  submit("x", 5);
  submit("y", 5);
  assert.deepEqual(bus.setPriority("p", "y", 2), { ok: true });
  assert.deepEqual(bus.queuedIds(), ["y", "x"]);
  assert.equal(bus.job("y")?.priority, 2);
  assert.match((bus.setPriority("p", "run", 0) as { reason: string }).reason, /not waiting/);
  assert.deepEqual(bus.setPriority("p", "y", 0), { ok: true }); // now preempts "run"
  assert.deepEqual(a.jobs, ["run", "y"]);
});

Deno.test("Dispatcher treats a known id as the same job, finished ones from the store until pruned", () => {
  const store = new SqliteStore({ path: ":memory:", keepFinished: { count: 2 } });
  const { bus, submit, report, clock } = setup({ store });
  const a = new FakePeer("a", 2, 1);
  bus.addScheduler(a);
  submit("j1", 5);
  const payload = { priority: 0, runtime: 1 };
  assert.deepEqual(bus.submit({ owner: "other", id: "j1", payload }), {
    ok: true,
    id: "j1",
    duplicate: true,
    state: "queued", // at a, which has not reported yet
    final: false,
    scheduler: "a",
  });
  for (const id of ["j1", "j2", "j3"]) {
    if (id !== "j1") submit(id, 5);
    report(a, id, "succeeded");
  }
  assert.equal(bus.job("j1")?.state, "succeeded"); // no longer live: the store answers for it
  assert.deepEqual(bus.submit({ owner: "p", id: "j1", payload }), {
    ok: true,
    id: "j1",
    duplicate: true,
    state: "succeeded",
    final: true,
    scheduler: "a",
  });
  assert.equal(store.commit().ok, true);
  assert.equal(store.prune(clock.now()), 1); // beyond the 2 newest finished: j1 goes
  assert.deepEqual(bus.submit({ owner: "p", id: "j1", payload }), {
    ok: true,
    id: "j1",
    duplicate: false,
  });
  const auto = bus.submit({ owner: "p", payload });
  assert.ok(auto.ok && auto.id.length > 0 && !auto.duplicate);
  bus.close();
  store.close();
});

Deno.test("Dispatcher assigns b<hex>-<n> ids; a seed job is final at once", () => {
  const { bus, states } = setup();
  const seed = new FakePeer("s", 1);
  bus.addScheduler(seed);
  const payload = { priority: 4, runtime: 1 };
  const first = bus.submit({ owner: "p", payload });
  const second = bus.submit({ owner: "p", payload });
  assert.ok(first.ok && second.ok);
  assert.match(first.id, /^b[0-9a-f]{8}-1$/);
  assert.equal(second.id, first.id.replace(/1$/, "2"));
  assert.deepEqual(seed.jobs, [first.id, second.id]);
  assert.deepEqual(states(first.id), ["queued", "delivered"]);
  assert.equal(bus.job(first.id)?.state, "delivered"); // the store keeps assigned ids too
  bus.submit({ owner: "p", id: "given", payload });
  assert.equal(bus.job("given")?.state, "delivered"); // remembered for idempotency
  assert.equal(bus.status().outcomes.delivered, 3);
  assert.equal(bus.queueLength, 0);
});

Deno.test("Dispatcher counts suspended jobs out of free slots and victims, and back in", () => {
  const { bus, submit, report } = setup();
  const a = new FakePeer("a", 2, 1);
  bus.addScheduler(a);
  submit("low", 9);
  report(a, "low", "started");
  report(a, "low", "suspended");
  submit("next", 5); // the suspended job frees its slot
  assert.deepEqual(a.jobs, ["low", "next"]);
  report(a, "next", "started");
  report(a, "low", "resumed");
  assert.equal(bus.status().schedulers[0]?.free, -1);
  submit("urgent", 0); // no slot free: sent to evict "low", the least urgent
  submit("urgent2", 0); // "low" is marked: sent to evict "next"
  submit("urgent3", 0); // both marked: it waits
  assert.deepEqual(a.jobs, ["low", "next", "urgent", "urgent2"]);
  report(a, "low", "evicted"); // requeued behind the more urgent one
  assert.deepEqual(bus.queuedIds(), ["urgent3", "low"]);
  assert.equal(bus.status().schedulers[0]?.free, -2); // next, urgent, urgent2 on 1 slot
});

Deno.test("Dispatcher answers a duplicate with the job's state, and its ending once final", () => {
  const { bus, submit, report, events } = setup();
  const a = new FakePeer("a", 2, 1);
  bus.addScheduler(a);
  submit("run", 5);
  submit("wait", 5);
  const again = (id: string): unknown => {
    const { ok: _ok, id: _id, ...rest } = bus.submit({
      owner: "p",
      id,
      payload: { priority: 5, runtime: 1 },
    }) as Record<string, unknown>;
    return rest;
  };
  assert.deepEqual(again("wait"), { duplicate: true, state: "queued", final: false });
  report(a, "run", "started");
  assert.deepEqual(again("run"), {
    duplicate: true,
    state: "started",
    final: false,
    scheduler: "a",
  });
  bus.schedulerEvent("a", {
    cmd: "event",
    id: "run",
    state: "failed",
    result: { code: 3 },
    reason: "exit 3",
  });
  assert.deepEqual(again("run"), {
    duplicate: true,
    state: "failed",
    final: true,
    scheduler: "a",
    result: { code: 3 },
    reason: "exit 3",
  });
  assert.deepEqual(a.jobs, ["run", "wait"]);
  bus.schedulerEvent("a", { cmd: "event", id: "wait", state: "evicted", requeue: false });
  assert.deepEqual(again("wait"), {
    duplicate: true,
    state: "evicted",
    final: true,
    scheduler: "a",
  });
  // Only the last event of a job says final.
  const finals = events.filter((e) => e.final).map((e) => `${e.id} ${e.state}`);
  assert.deepEqual(finals, ["run failed", "wait evicted"]);
});

Deno.test("Dispatcher keeps jobs queued while a scheduler's send buffer is full", () => {
  const { bus, submit } = setup();
  const a = new FakePeer("a", 2, 2);
  a.writable = false;
  bus.addScheduler(a);
  submit("j", 5);
  assert.equal(bus.blocked, true);
  assert.deepEqual(a.jobs, []);
  a.writable = true;
  bus.pump();
  assert.equal(bus.blocked, false);
  assert.deepEqual(a.jobs, ["j"]);
});

Deno.test("Dispatcher ignores reports about jobs not attached to the reporter", () => {
  const notices: string[] = [];
  const { bus, submit, report, states } = setup({ onNotice: (m) => notices.push(m) });
  const a = new FakePeer("a");
  const b = new FakePeer("b");
  bus.addScheduler(a);
  bus.addScheduler(b);
  submit("j", 5);
  report(b.jobs.length ? a : b, "j", "succeeded"); // the one that does not have it
  report(a, "ghost", "started");
  assert.deepEqual(states("j"), ["queued"]);
  assert.equal(notices.length, 2);
});

Deno.test("Dispatcher frees a victim whose preemptor was lost with a dying connection", () => {
  const { bus, submit, report } = setup({ lostFenceMs: 0 });
  const old = new FakePeer("c1", 2, 1, "node");
  bus.addScheduler(old);
  submit("low", 9);
  report(old, "low", "started");
  submit("hi", 1); // a preemptor for "low", lost in flight: the connection is dying
  assert.deepEqual(old.jobs, ["low", "hi"]);
  const fresh = new FakePeer("c2", 2, 1, "node");
  bus.addScheduler(fresh, ["low"]); // reconnected before c1 is seen closed; "hi" never arrived
  bus.removeScheduler("c1"); // "hi" comes back to the queue
  assert.deepEqual(fresh.jobs, ["hi"]); // and goes to evict "low" again
  assert.deepEqual(bus.queuedIds(), []);
});

Deno.test("Dispatcher frees a victim once its preemptor started without evicting it", () => {
  const { bus, submit, report } = setup();
  const a = new FakePeer("a", 2, 2);
  bus.addScheduler(a);
  submit("low", 9);
  submit("mid", 5);
  report(a, "low", "started");
  report(a, "mid", "started");
  submit("hi1", 1); // a preemptor for "low"...
  report(a, "mid", "succeeded"); // ...but "mid" ended first at the scheduler
  report(a, "hi1", "started"); // so "hi1" took mid's slot and "low" still runs, unharmed
  submit("hi2", 1);
  assert.deepEqual(a.jobs, ["low", "mid", "hi1", "hi2"]); // "low" may be preempted again
});

Deno.test("Dispatcher tells the old connection to stop a job it moves to a same-named one", () => {
  const { bus, submit } = setup();
  const first = new FakePeer("c1", 2, 1, "scheduler-1"); // two live schedulers share a name
  bus.addScheduler(first); // (e.g. the default scheduler-<pid> in two containers)
  submit("j", 5);
  const second = new FakePeer("c2", 2, 1, "scheduler-1");
  bus.addScheduler(second, ["j"]);
  assert.equal(bus.job("j")?.scheduler, "scheduler-1");
  assert.deepEqual(first.cancels, [["j", "reassigned"]]); // one of them only runs it
  assert.deepEqual(second.cancels, []);
});

Deno.test("Dispatcher sends a draining scheduler no jobs and no preemptors", () => {
  const { bus, submit, report, states, events } = setup();
  const a = new FakePeer("a", 2, 2);
  bus.addScheduler(a);
  submit("low", 9);
  report(a, "low", "started");
  bus.drainScheduler("a");
  bus.drainScheduler("a"); // idempotent
  submit("free-slot", 5); // a has a free slot, but drains
  submit("urgent", 0); // would preempt "low" on a, but a drains
  assert.deepEqual(a.jobs, ["low"]);
  assert.equal(bus.queueLength, 2);
  assert.equal(bus.status().schedulers[0]?.draining, true);
  bus.removeScheduler("a"); // it leaves: its job comes back, and all wait for a scheduler
  assert.deepEqual(states("low"), ["queued", "started", "requeued"]);
  const requeued = events.findLast((e) => e.id === "low");
  assert.equal(requeued?.reason, "scheduler stopped", "it drained: stopped, not lost");
  const b = new FakePeer("b", 2, 3);
  bus.addScheduler(b);
  assert.deepEqual(b.jobs, ["urgent", "free-slot", "low"]);
});

// --- Issue 9: placement by labels and allow-lists, waiting reasons, attempts, retries ---

/** A v2 scheduler with labels and an allow-list. */
function labelled(
  client: string,
  labels: Record<string, string> | undefined,
  commands: string[] | undefined,
  slots = 1,
): FakePeer {
  const peer = new FakePeer(client, 2, slots);
  peer.labels = labels;
  peer.commands = commands;
  return peer;
}

type Extra = Record<string, unknown>;
const commandJob = (priority: number, command: string[], extra: Extra = {}) => ({
  priority,
  command,
  ...extra,
});

Deno.test("Dispatcher places a job only on a scheduler whose labels and allow-list match", () => {
  const { bus } = setup();
  const plain = labelled("plain", undefined, ["*"], 4);
  const gpu = labelled("gpu", { gpu: "a100", os: "linux" }, ["ffmpeg"], 2);
  const seed = new FakePeer("seed", 1);
  for (const peer of [plain, gpu, seed]) bus.addScheduler(peer);
  const submit = (id: string, payload: Record<string, unknown>) =>
    assert.ok(bus.submit({ owner: "p", id, payload: payload as never }).ok);
  submit("render", commandJob(5, ["ffmpeg", "-i", "a.mp4"], { requires: { gpu: "a100" } }));
  submit("train", commandJob(5, ["python3", "t.py"], { requires: { gpu: "a100" } }));
  submit("sleep-gpu", { priority: 5, runtime: 1, requires: { os: "linux" } });
  submit("shell", commandJob(5, ["sh", "-c", "true"]));
  assert.deepEqual(gpu.jobs, ["render", "sleep-gpu"]);
  assert.deepEqual(plain.jobs, ["shell"]); // the most free slots, and it allows every command
  assert.deepEqual(seed.jobs, []); // never a command job nor one with `requires`
  assert.deepEqual(bus.queuedIds(), ["train"]); // gpu allows ffmpeg only
  assert.equal(
    bus.waitingReason("train"),
    "no scheduler with gpu=a100 allows command python3",
  );
  for (let i = 0; i < 5; i++) submit(`s${i}`, { priority: 5, runtime: 1 });
  assert.ok(seed.jobs.length > 0, "sleeper jobs still go to the seed scheduler");
});

Deno.test("Dispatcher: a job nothing can run holds up no other job (no head-of-line blocking)", () => {
  const { bus, submit } = setup();
  const a = new FakePeer("a", 2, 2);
  bus.addScheduler(a);
  const stuck = bus.submit({ owner: "p", id: "stuck", payload: commandJob(0, ["ffmpeg"]) });
  assert.deepEqual(stuck, {
    ok: true,
    id: "stuck",
    duplicate: false,
    waiting: "no scheduler allows command ffmpeg",
  });
  const gpu = bus.submit({
    owner: "p",
    id: "gpu",
    payload: { priority: 0, runtime: 1, requires: { gpu: "a100" } },
  });
  assert.ok(gpu.ok && !gpu.duplicate && gpu.waiting === "no scheduler with gpu=a100");
  submit("later", 9);
  assert.deepEqual(a.jobs, ["later"]);
  assert.deepEqual(bus.queuedIds(), ["stuck", "gpu"]);
  assert.equal(bus.waitingReason("later"), undefined); // not waiting at all
  const status = bus.status().queue;
  assert.deepEqual(status.jobs, [
    { id: "stuck", priority: 0, waiting: "no scheduler allows command ffmpeg" },
    { id: "gpu", priority: 0, waiting: "no scheduler with gpu=a100" },
  ]);
  // A matching scheduler connects: the waiting jobs go to it, in priority order.
  const big = labelled("big", { gpu: "a100" }, ["ffmpeg"], 2);
  bus.addScheduler(big);
  assert.deepEqual(big.jobs, ["stuck", "gpu"]);
  assert.equal(bus.queueLength, 0);
});

Deno.test("Dispatcher says why a job waits: no scheduler connected, labels, command, or its turn", () => {
  const { bus, submit } = setup();
  const named = bus.submit({
    owner: "p",
    id: "named",
    payload: commandJob(3, ["ffmpeg"], { name: "render" }),
  });
  assert.ok(named.ok && !named.duplicate && named.waiting === "no scheduler connected");
  submit("sleeper", 4);
  assert.equal(bus.waitingReason("sleeper"), "no scheduler connected");
  const a = new FakePeer("a", 2, 1);
  bus.addScheduler(a); // takes "sleeper"; "named" it may not run
  submit("turn", 5); // waits its turn behind "sleeper"
  assert.deepEqual(bus.status().queue.jobs, [
    { id: "named", priority: 3, name: "render", waiting: "no scheduler allows command ffmpeg" },
    { id: "turn", priority: 5, waiting: null },
  ]);
  assert.equal(bus.waitingReason("turn"), undefined);
  assert.equal(bus.waitingReason("nope"), undefined);
  bus.drainScheduler("a");
  assert.equal(bus.waitingReason("turn"), "no scheduler connected"); // draining ones do not count
});

Deno.test("Dispatcher preempts only among schedulers that match the job", () => {
  const { bus, submit, report } = setup();
  const gpu = labelled("gpu", { gpu: "a100" }, undefined, 1);
  const cpu = new FakePeer("cpu", 2, 1);
  bus.addScheduler(gpu);
  bus.addScheduler(cpu);
  submit("on-gpu", 6);
  submit("on-cpu", 9); // the least urgent job running anywhere
  assert.deepEqual([gpu.jobs, cpu.jobs], [["on-gpu"], ["on-cpu"]]);
  report(gpu, "on-gpu", "started");
  report(cpu, "on-cpu", "started");
  const urgent = bus.submit({
    owner: "p",
    id: "urgent",
    payload: { priority: 1, runtime: 1, requires: { gpu: "a100" } },
  });
  assert.ok(urgent.ok);
  assert.deepEqual(gpu.jobs, ["on-gpu", "urgent"]); // sent to evict on-gpu, not on-cpu
  assert.deepEqual(cpu.jobs, ["on-cpu"]);
  // A job no scheduler matches preempts nothing.
  bus.submit({ owner: "p", id: "tpu", payload: { priority: 0, runtime: 1, requires: { t: "1" } } });
  assert.deepEqual([gpu.jobs.length, cpu.jobs.length], [2, 1]);
});

Deno.test("Dispatcher counts attempts: 1 on the first hand-over, one more per requeue", () => {
  const { bus, submit, report } = setup({ lostFenceMs: 0 });
  const a = new FakePeer("a", 2, 1);
  bus.addScheduler(a);
  submit("j", 5);
  report(a, "j", "started");
  bus.schedulerEvent("a", { cmd: "event", id: "j", state: "evicted" });
  assert.deepEqual(a.jobs, ["j", "j"]);
  assert.deepEqual(a.attempts, [1, 2]);
  assert.equal(bus.job("j")?.attempts, 2);
  bus.removeScheduler("a");
  const b = new FakePeer("b", 2, 1);
  bus.addScheduler(b);
  assert.deepEqual(b.attempts, [3]);
});

/** A scheduler allowing every command, a command job with `retries`, and a way to fail it. */
type RetrySetup = ReturnType<typeof setup> & {
  a: FakePeer;
  fail: (state: "failed" | "timed_out", result?: Extra) => void;
  last: () => DispatcherJobEvent;
};

function retrySetup(retries: number): RetrySetup {
  const t = setup();
  const a = labelled("a", undefined, ["*"], 1);
  t.bus.addScheduler(a);
  const result = t.bus.submit({
    owner: "p",
    id: "r",
    payload: commandJob(5, ["sh", "-c", "exit 3"], { retries }),
  });
  assert.ok(result.ok);
  const fail = (state: "failed" | "timed_out", res: Extra = { exitCode: 3, signal: null }) =>
    t.bus.schedulerEvent("a", { cmd: "event", id: "r", state, result: res });
  const last = () => t.events.filter((e) => e.id === "r").at(-1)!;
  return { ...t, a, fail, last };
}

Deno.test("Dispatcher retries a failed command job after a growing backoff, then ends it", async () => {
  const { a, clock, fail, last, states, bus } = retrySetup(2);
  assert.deepEqual(a.attempts, [1]);
  fail("failed");
  assert.equal(last().state, "requeued");
  assert.equal(last().reason, "retry 1 of 2 in 1 s (exit code 3)");
  assert.equal(last().final, undefined);
  assert.equal(bus.job("r")?.state, "requeued");
  await clock.tick(999);
  assert.deepEqual(a.attempts, [1]); // still in its backoff
  await clock.tick(1);
  assert.deepEqual(a.attempts, [1, 2]);
  fail("timed_out", { exitCode: null, signal: "SIGTERM" });
  assert.equal(last().reason, "retry 2 of 2 in 2 s (timed out)");
  await clock.tick(2000);
  assert.deepEqual(a.attempts, [1, 2, 3]);
  fail("failed", { exitCode: 4, signal: null, attempts: 3 });
  assert.equal(last().state, "failed");
  assert.equal(last().final, true);
  assert.deepEqual(last().result, { exitCode: 4, signal: null, attempts: 3 });
  assert.deepEqual(states("r"), [
    "queued",
    "requeued",
    "requeued",
    "failed",
  ]);
  await clock.tick(120_000);
  assert.deepEqual(a.attempts, [1, 2, 3]);
});

Deno.test("Dispatcher never retries a job that could not start, nor one without retries", () => {
  const { fail, last } = retrySetup(3);
  fail("failed", { exitCode: null, signal: null, startError: "no such executable: x" });
  assert.equal(last().state, "failed");
  assert.equal(last().final, true);
  const plain = setup();
  const a = labelled("a", undefined, ["*"], 1);
  plain.bus.addScheduler(a);
  plain.bus.submit({ owner: "p", id: "once", payload: commandJob(5, ["false"]) });
  plain.bus.schedulerEvent("a", { cmd: "event", id: "once", state: "failed" });
  assert.deepEqual(plain.states("once"), ["queued", "failed"]);
  // A sleeper job has no retries either, whatever its payload says.
  plain.bus.submit({ owner: "p", id: "sl", payload: { priority: 5, runtime: 1, retries: 2 } });
  plain.bus.schedulerEvent("a", { cmd: "event", id: "sl", state: "failed" });
  assert.deepEqual(plain.states("sl"), ["queued", "failed"]);
});

Deno.test("Dispatcher retry reasons: signal, exit code, reason; the wait is capped at 60 s", async () => {
  const { clock, fail, last } = retrySetup(100);
  const reasons: string[] = [];
  for (let i = 1; i <= 8; i++) {
    fail("failed", i === 1 ? { exitCode: null, signal: "SIGKILL" } : { exitCode: i });
    reasons.push(last().reason!);
    await clock.tick(60_000);
  }
  assert.equal(reasons[0], "retry 1 of 100 in 1 s (killed by SIGKILL)");
  assert.equal(reasons[1], "retry 2 of 100 in 2 s (exit code 2)");
  assert.equal(reasons[6], "retry 7 of 100 in 60 s (exit code 7)");
  assert.equal(reasons[7], "retry 8 of 100 in 60 s (exit code 8)");
});

Deno.test("Dispatcher cancels a job in its retry backoff at once, with its last result", async () => {
  const { a, clock, fail, last, bus } = retrySetup(2);
  fail("failed");
  assert.deepEqual(bus.setPriority("p", "r", 1), { ok: true }); // allowed while it waits
  assert.deepEqual(bus.cancel("p", "r"), { ok: true });
  assert.equal(last().state, "cancelled");
  assert.equal(last().final, true);
  assert.deepEqual(last().result, { exitCode: 3, signal: null });
  await clock.tick(10_000);
  assert.deepEqual(a.attempts, [1]); // never sent again
  assert.deepEqual(bus.cancel("p", "r"), { ok: false, reason: "job already cancelled" });
});

Deno.test("Dispatcher close() stops the retry timers", async () => {
  const { a, clock, fail, bus } = retrySetup(2);
  fail("failed");
  bus.close();
  bus.close(); // idempotent
  await clock.tick(10_000);
  assert.deepEqual(a.attempts, [1]);
});

Deno.test("Dispatcher: a duplicate submission during the backoff says requeued, not final", () => {
  const { fail, bus } = retrySetup(1);
  fail("failed");
  const again = bus.submit({ owner: "p", id: "r", payload: commandJob(5, ["true"]) });
  assert.deepEqual(again, { ok: true, id: "r", duplicate: true, state: "requeued", final: false });
});

Deno.test("Dispatcher keeps placing with 100,000 jobs waiting that nothing can run", () => {
  const { bus, report } = setup({ maxQueue: 200_000 });
  for (let i = 0; i < 100_000; i++) {
    const payload = i % 2 === 0
      ? { priority: i % 11, runtime: 1, requires: { gpu: "a100" } }
      : commandJob(i % 11, ["ffmpeg", `${i}`]);
    bus.submit({ owner: "p", id: `stuck${i}`, payload });
  }
  const a = new FakePeer("a", 2, 4);
  bus.addScheduler(a);
  for (let i = 0; i < 1000; i++) {
    bus.submit({ owner: "p", id: `s${i}`, payload: { priority: 10, runtime: 1 } });
  }
  for (let i = 0; i < 1000; i++) report(a, `s${i}`, "succeeded");
  assert.equal(a.jobs.length, 1000);
  assert.equal(bus.queueLength, 100_000);
  const first = bus.status().queue.jobs;
  assert.equal(first.length, 100);
  assert.deepEqual(first.slice(0, 2).map((j) => j.id), ["stuck0", "stuck11"]);
  assert.equal(first[0]?.waiting, "no scheduler with gpu=a100");
});

Deno.test("Dispatcher does not retry a job its producer asked to cancel while it ran", () => {
  const { fail, last, bus, a } = retrySetup(2);
  assert.deepEqual(bus.cancel("p", "r"), { ok: true });
  assert.deepEqual(a.cancels, [["r", "cancelled by its owner"]]);
  fail("failed");
  assert.equal(last().state, "failed");
  assert.equal(last().final, true);
});

Deno.test("Dispatcher says onBlocked when a retry comes back to a scheduler that cannot take frames", async () => {
  let blocked = 0;
  const t = setup({ onBlocked: () => blocked++ });
  const b = labelled("b", undefined, ["*"], 1);
  t.bus.addScheduler(b);
  t.bus.submit({ owner: "p", id: "x", payload: commandJob(5, ["false"], { retries: 1 }) });
  b.writable = false;
  t.bus.schedulerEvent("b", { cmd: "event", id: "x", state: "failed" });
  await t.clock.tick(1000);
  assert.equal(blocked, 1);
  assert.equal(t.bus.blocked, true);
  b.writable = true;
  t.bus.pump();
  assert.deepEqual(b.attempts, [1, 2]);
});

Deno.test("Dispatcher broadcast sends a job to the matching schedulers only", () => {
  const { bus, states } = setup({ broadcast: true });
  const seed = new FakePeer("seed", 1);
  const any = labelled("any", undefined, ["*"]);
  const none = new FakePeer("none");
  for (const peer of [seed, any, none]) bus.addScheduler(peer);
  bus.submit({ owner: "p", id: "c", payload: commandJob(5, ["true"]) });
  bus.submit({ owner: "p", id: "s", payload: { priority: 5, runtime: 1 } });
  assert.deepEqual([seed.jobs, any.jobs, none.jobs], [["s"], ["c", "s"], ["s"]]);
  assert.deepEqual(states("c"), ["queued", "delivered"]);
});
