// deno-lint-ignore-file no-console
/**
 * Benchmarks of `scheduler/runner.ts`: the runner's own scheduling overhead per job, with an
 * instant fake launcher (no processes), against the bare cost of pushing and popping the same
 * jobs through a `BinaryHeap` (the baseline in each group).
 *
 * `deno bench -A bench/runner_bench.ts` measures time. Run it with `--v8-flags=--expose-gc` to
 * also print the V8 heap bytes per waiting job (100,000 waiting).
 *
 * @module
 */

import { mulberry32 } from "../producer/generator.ts";
import { BinaryHeap } from "../core/binary_heap.ts";
import { Runner } from "../scheduler/runner.ts";
import type { JobInfo, LaunchedJob, LaunchOutcome } from "../scheduler/job.ts";

const N = 100_000;

/** Random priorities 0..`max`, built once. */
function priorities(count: number, max: number, seed: number): number[] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, () => Math.floor(random() * (max + 1)));
}

const JOBS = priorities(N, 10, 42);
const URGENT = priorities(N, 9, 7); // 0..9: all more urgent than the priority-10 fillers

const SUCCESS: Promise<LaunchOutcome> = Promise.resolve({ result: "success", code: 0 });

/** Instant jobs: they succeed as soon as the runner looks (payload `true`). */
const instant: LaunchedJob = {
  wait: () => SUCCESS,
  terminate: () => SUCCESS,
  suspend(): void {},
  resume(): void {},
};

/** Payload `true`: instant; `false`: runs until terminated. */
function launch(job: JobInfo<boolean>): LaunchedJob {
  if (job.payload) return instant;
  const end = Promise.withResolvers<LaunchOutcome>();
  return {
    wait: () => end.promise,
    terminate: () => {
      end.resolve({ result: "terminated", code: null });
      return end.promise;
    },
    suspend(): void {},
    resume(): void {},
  };
}

interface Entry {
  priority: number;
  seq: number;
}
const byPrioritySeq = (a: Entry, b: Entry): number => a.priority - b.priority || a.seq - b.seq;

/** Pushes then pops every priority through a BinaryHeap, on top of `waiting` entries. */
function heapRun(list: number[], waiting: number): void {
  const heap = new BinaryHeap<Entry>(byPrioritySeq);
  for (let i = 0; i < waiting; i++) heap.push({ priority: 10, seq: i });
  let seq = waiting;
  for (const priority of list) heap.push({ priority, seq: seq++ });
  for (let i = 0; i < list.length; i++) heap.pop();
}

/** Resolves once `count` jobs have succeeded. */
function succeeded(runner: Runner<boolean>, count: number): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  let left = count;
  runner.addEventListener("succeeded", () => {
    if (--left === 0) resolve();
  });
  return promise;
}

Deno.bench({
  group: "100k jobs, 5 slots",
  name: "BinaryHeap push + pop (baseline)",
  baseline: true,
  fn: () => heapRun(JOBS, 0),
});

Deno.bench({
  group: "100k jobs, 5 slots",
  name: "Runner submit, evict, run to idle",
  fn: async () => {
    const runner = new Runner<boolean>({ launch, slots: 5 });
    for (const priority of JOBS) runner.submit(true, { priority });
    await runner.onIdle();
    await runner.close();
  },
});

Deno.bench({
  group: "100k jobs over 100k waiting",
  name: "BinaryHeap push + pop over 100k (baseline)",
  baseline: true,
  fn: (b) => {
    b.start();
    heapRun(URGENT, N);
    b.end();
  },
});

Deno.bench({
  group: "100k jobs over 100k waiting",
  name: "Runner submit, evict, run over 100k waiting",
  fn: async (b) => {
    const runner = new Runner<boolean>({ launch, slots: 5 });
    for (let i = 0; i < N; i++) runner.submit(false, { priority: 10 }); // 5 run, the rest wait
    const done = succeeded(runner, N);
    b.start();
    for (const priority of URGENT) runner.submit(true, { priority });
    await done;
    b.end();
    await runner.close();
  },
});

const gc = (globalThis as { gc?: () => void }).gc;
if (gc) {
  gc();
  const before = Deno.memoryUsage().heapUsed;
  const runner = new Runner<boolean>({ launch, slots: 1 });
  for (const priority of JOBS) runner.submit(false, { priority });
  gc();
  const after = Deno.memoryUsage().heapUsed;
  console.log(
    `Runner: ${Math.round((after - before) / N)} bytes of V8 heap per waiting job (${N} waiting)`,
  );
  await runner.close();
}
