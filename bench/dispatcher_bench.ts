/**
 * The bus's delivery policy against a bare binary heap: how much the dispatcher (job table,
 * idempotency, credits, preemption search, events) costs over the queue it is built on.
 *
 * @module
 */

import { Dispatcher, type SchedulerPeer } from "../bus/dispatcher.ts";
import { BinaryHeap } from "../core/binary_heap.ts";
import { mulberry32 } from "../producer/generator.ts";

const N = 10_000;
const random = mulberry32(42);
const priorities = Array.from({ length: N }, () => Math.floor(random() * 11));

Deno.bench({
  group: "bus dispatch 10k jobs",
  name: "bare heap push + pop (baseline)",
  baseline: true,
  fn: () => {
    // i < N = priorities.length: every read below is in range.
    const heap = new BinaryHeap<{ priority: number; seq: number }>((a, b) =>
      a.priority - b.priority || a.seq - b.seq
    );
    for (let i = 0; i < N; i++) heap.push({ priority: priorities[i]!, seq: i });
    while (heap.length > 0) heap.pop();
  },
});

/** Submits every job with no scheduler, then 4 schedulers of 8 slots take them one by one. */
Deno.bench({
  group: "bus dispatch 10k jobs",
  name: "Dispatcher submit, dispatch, succeed",
  fn: () => {
    // i < N = priorities.length, i < sent.length: every read below is in range.
    let events = 0;
    const dispatcher = new Dispatcher({ onJobEvent: () => events++ });
    const sent: [string, string][] = [];
    for (let i = 0; i < N; i++) {
      dispatcher.submit({
        owner: "p",
        id: `j${i}`,
        payload: { priority: priorities[i]!, runtime: 1 },
      });
    }
    const peers: SchedulerPeer[] = ["a", "b", "c", "d"].map((client) => ({
      client,
      name: client,
      protocol: 2,
      slots: 8,
      canSend: () => true,
      sendJob: (id: string) => sent.push([client, id]),
      sendCancel: () => {},
    }));
    for (const peer of peers) dispatcher.addScheduler(peer);
    for (let i = 0; i < sent.length; i++) {
      const [client, id] = sent[i]!;
      dispatcher.schedulerEvent(client, { cmd: "event", id, state: "succeeded" });
    }
    if (sent.length !== N || events < 2 * N) throw new Error("not every job went through");
  },
});

/**
 * 4 schedulers of 8 slots without labels connect, the same 10k sleeper jobs as above go through
 * them, and they leave: the dispatcher is reused, so each run's ids get a `prefix`.
 */
function runSleepers(dispatcher: Dispatcher, prefix: string): void {
  const sent: [string, string][] = [];
  const peers: SchedulerPeer[] = ["a", "b", "c", "d"].map((name) => ({
    client: prefix + name,
    name,
    protocol: 2,
    slots: 8,
    canSend: () => true,
    sendJob: (id: string) => sent.push([prefix + name, id]),
    sendCancel: () => {},
  }));
  for (const peer of peers) dispatcher.addScheduler(peer);
  for (let i = 0; i < N; i++) {
    const payload = { priority: priorities[i]!, runtime: 1 };
    dispatcher.submit({ owner: "p", id: `${prefix}j${i}`, payload });
  }
  // i < sent.length: every read below is in range.
  for (let i = 0; i < sent.length; i++) {
    const [client, id] = sent[i]!;
    dispatcher.schedulerEvent(client, { cmd: "event", id, state: "succeeded" });
  }
  for (const peer of peers) dispatcher.removeScheduler(peer.client);
  if (sent.length !== N) throw new Error("not every job went through");
}

/** 100k jobs nothing can run (half require gpu=a100, half run ffmpeg). */
function stuckDispatcher(): Dispatcher {
  const dispatcher = new Dispatcher({ maxQueue: 200_000 });
  for (let i = 0; i < 100_000; i++) {
    const payload = i % 2 === 0
      ? { priority: i % 11, runtime: 1, requires: { gpu: "a100" } }
      : { priority: i % 11, command: ["ffmpeg", "-i", `${i}.mp4`] };
    dispatcher.submit({ owner: "p", id: `stuck${i}`, payload });
  }
  return dispatcher;
}

const GROUP = "bus dispatch 10k sleeper jobs beside 100k waiting jobs nothing can run";
const empty = new Dispatcher();
const stuck = stuckDispatcher();
let runs = 0;

Deno.bench({
  group: GROUP,
  name: "10k sleeper jobs, nothing else waiting (baseline)",
  baseline: true,
  fn: () => runSleepers(empty, `r${runs++}-`),
});

Deno.bench({
  group: GROUP,
  name: "10k sleeper jobs, 100k unplaceable jobs waiting",
  fn: () => {
    runSleepers(stuck, `r${runs++}-`);
    if (stuck.queueLength !== 100_000) throw new Error("a stuck job went somewhere");
  },
});
