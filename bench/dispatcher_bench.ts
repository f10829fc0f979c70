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
