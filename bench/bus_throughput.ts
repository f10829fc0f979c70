// deno-lint-ignore-file no-console
/**
 * The bus on loopback, end to end (issues 4 and 5): a bench script, not a `Deno.bench` file,
 * because it needs the bus in a process of its own (`deno task bench-bus`).
 *
 * Each scenario starts a fresh server process (the bus CLI, or the bare relay of
 * `bench/relay.ts` as the ceiling) and runs every client in this process: so the server has a
 * core of its own on a 2-core machine. All clients share this process's clock, so a send
 * timestamp embedded in the payload (`t`, with the sequence number `seq`: extra payload fields
 * travel along) gives the send-to-receipt latency directly.
 *
 * - **flood**: one producer sends `--jobs` job requests as fast as the socket allows with at
 *   most `--window` in flight, to 1 and to 4 schedulers. In flight means: not yet received by
 *   a scheduler, for the relay and the seed protocol (a seed producer gets no answer; as the
 *   schedulers live in this process the producer is told of each receipt, a closed loop the
 *   seed protocol alone could not have); not yet `accepted`, for a v2 producer (the bus's
 *   answer, the only window a real v2 producer has). Targets: `relay` (bare `WebSocket`s),
 *   `seed` (protocol-1 producer and schedulers on `BusClient`: the pure delivery path) and
 *   `v2` (protocol-2 producer and schedulers on `BusClient`; schedulers announce `--slots`
 *   and report `started` and `succeeded` as soon as a job arrives); `seed-builtin` and
 *   `v2-builtin` are the same on Deno's own `WebSocket` (`BusClient`'s `noDelay: false`,
 *   Nagle on). Measured: jobs/s delivered (first send to last receipt), send-to-receipt
 *   p50/p99/max; for v2 also jobs/s finished (the producer's `succeeded` events) and
 *   accepted-to-started as the producer sees it (its `accepted` answer to its `started`
 *   event); the CPU the server process and this process used, in cores and in µs per job:
 *   on a shared machine the CPU per job is steadier than the rate, and it tells which
 *   process limits.
 * - **probe** (v2): one job at a time, the next sent when the previous one's `succeeded`
 *   event reached the producer, so slots are always free: send-to-accepted,
 *   accepted-to-started, started-to-succeeded (the scheduler's two frames sent back to back,
 *   where a Nagle stall would show) and send-to-succeeded.
 *
 * Figures go to `docs/bench.md` as ratios against the relay measured in the same round.
 *
 * @module
 */

import { type Flags, integerFlag, type MainOptions, runCli, UsageError } from "../cli/mod.ts";
import { BusClient, type BusMessage } from "../bus/client.ts";
import { mulberry32 } from "../producer/generator.ts";

/** The relay, or the bus with seed or v2 clients on `WsClient` (or on the built-in WebSocket). */
type Target = "relay" | "seed" | "v2" | "seed-builtin" | "v2-builtin";
const TARGETS: readonly Target[] = ["relay", "seed", "v2", "seed-builtin", "v2-builtin"];
const isV2 = (target: Target): boolean => target.startsWith("v2");
const isSeed = (target: Target): boolean => target.startsWith("seed");

/** Percentiles of a latency sample, in milliseconds. */
interface Stats {
  p50: number;
  p99: number;
  max: number;
  /** Samples over 30 ms: the signature of a ~40 ms delayed-ACK stall. */
  over30: number;
}

interface FloodResult {
  round: number;
  target: Target;
  schedulers: number;
  jobs: number;
  seconds: number;
  deliveredPerS: number;
  sendToReceipt: Stats;
  /** Most jobs sent and not yet received by a scheduler at any time. */
  maxInFlight: number;
  finishedPerS?: number;
  acceptedToStarted?: Stats;
  /** CPU used during the measured part, in cores: the server's process and this one. */
  cpu: { server: number; clients: number };
  timedOut: boolean;
}

/** A server process: its WebSocket URL (with a trailing `/`) and pid. */
interface Server {
  url: string;
  pid: number;
}

interface ProbeResult {
  target: Target;
  schedulers: number;
  jobs: number;
  sendToAccepted: Stats;
  acceptedToStarted: Stats;
  startedToSucceeded: Stats;
  sendToSucceeded: Stats;
}

interface Config {
  jobs: number;
  window: number;
  slots: number;
  rounds: number;
  probe: number;
  warmup: number;
  only: Target[];
  timeoutMs: number;
}

const USAGE = `Usage: deno task bench-bus [-- options]

The bus on loopback against a bare WebSocket relay (see docs/bench.md, "bus").

Options:
  --jobs N        job requests per flood (default 100000)
  --window N      most requests in flight (default 1000)
  --slots N       slots announced by each v2 scheduler (default 1000)
  --rounds N      rounds of every flood scenario (default 1)
  --warmup N      jobs sent through each fresh server before measuring (default 5000)
  --probe N       one-at-a-time v2 jobs for the latency probe, 0 to skip (default 300)
  --only LIST     targets to run, comma-separated (default all): relay, seed, v2,
                  seed-builtin, v2-builtin (-builtin: BusClient on Deno's WebSocket,
                  Nagle on, instead of WsClient)
  --timeout S     give up on a scenario after S seconds (default 120)
  --json FILE     also write every result as JSON to FILE
  -h, --help      show this help`;

const ROOT = new URL("..", import.meta.url);
const now = (): number => performance.now();

/**
 * Runs the benchmark.
 *
 * @param args Command-line arguments (a leading `--` is dropped).
 * @param options Injection points for the harness's own lines (usage, errors); the
 *   benchmark's figures go to the console.
 * @returns 0 when done, 2 on a bad flag.
 * @example
 * ```ts
 * import { main } from "./bus_throughput.ts";
 * console.log(await main(["--help"])); // 0
 * ```
 */
export function main(args: string[], options: MainOptions = {}): Promise<number> {
  return runCli(
    { name: "bench-bus", usage: USAGE, options: OPTIONS, configure, run },
    args,
    options,
  );
}

async function run({ config, jsonPath }: Parsed): Promise<number> {
  const version = new Deno.Command(Deno.execPath(), { args: ["--version"] }).outputSync();
  console.log(
    `${new Date().toISOString()}, nproc ${navigator.hardwareConcurrency}, ` +
      `${new TextDecoder().decode(version.stdout).split("\n")[0]}, load ${Deno.loadavg()}`,
  );
  console.log(
    `flood: ${config.jobs} jobs, window ${config.window}, v2 slots ${config.slots}, ` +
      `warmup ${config.warmup}`,
  );

  const floods: FloodResult[] = [];
  for (let round = 1; round <= config.rounds; round++) {
    for (const schedulers of [1, 4]) {
      for (const target of config.only) {
        const result = await withServer(
          target,
          (server) => flood(server, target, schedulers, config),
        );
        result.round = round;
        floods.push(result);
        printFlood(result, floods);
      }
    }
  }
  const probes: ProbeResult[] = [];
  for (const target of config.only.filter(isV2)) {
    for (const schedulers of config.probe > 0 ? [1, 4] : []) {
      const result = await withServer(
        target,
        (server) => probe(server.url, target, schedulers, config),
      );
      probes.push(result);
      printProbe(result);
    }
  }
  console.log(`load after: ${Deno.loadavg()}`);
  if (jsonPath) await Deno.writeTextFile(jsonPath, JSON.stringify({ floods, probes }, null, 2));
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Servers in their own process

/** Starts the bus CLI or the relay in a child process, runs `body`, then stops the child. */
async function withServer<T>(target: Target, body: (server: Server) => Promise<T>): Promise<T> {
  const args = target === "relay"
    ? ["run", "-A", new URL("bench/relay.ts", ROOT).pathname, "--port", "0"]
    : [
      ...["run", "-A", new URL("bus/main.ts", ROOT).pathname, "--port", "0", "--memory"],
      ...["--max-queue", "200000", "--max-rate", "1000000000"], // a flood: no rate limit
    ];
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" })
    .spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let seen = "";
    let match: RegExpMatchArray | null = null;
    while (!(match = seen.match(/ws:\/\/[\d.]+:\d+\//))) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${target} server exited before listening: ${seen}`);
      seen += value;
    }
    const drained = (async () => {
      while (!(await reader.read()).done) { /* the bus's log lines: not needed */ }
    })();
    try {
      return await body({ url: match[0], pid: child.pid });
    } finally {
      child.kill("SIGTERM");
      await drained;
    }
  } finally {
    reader.releaseLock();
    await child.status;
  }
}

/** Waits until the bus's `/health` counts `n` schedulers (registration is asynchronous). */
async function awaitSchedulers(url: string, n: number): Promise<void> {
  const health = url.replace(/^ws/, "http") + "health";
  for (let i = 0; i < 500; i++) {
    const body = await (await fetch(health)).json();
    if (body.schedulers.seed + body.schedulers.v2 >= n) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`the bus never counted ${n} schedulers`);
}

// ---------------------------------------------------------------------------------------------
// Clients

/** One client connection, whatever it is built on. */
interface Peer {
  send(message: object): void;
  close(): Promise<void>;
}

type OnMessage = (message: BusMessage) => void;

/** A bare WebSocket (the relay's clients), parsing each frame as the bus clients do. */
async function barePeer(url: string, onMessage: OnMessage): Promise<Peer> {
  const ws = new WebSocket(url);
  const closed = new Promise((resolve) => ws.onclose = resolve);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
  });
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
  return {
    send: (message) => ws.send(JSON.stringify(message)),
    close: async () => {
      ws.close();
      await closed;
    },
  };
}

/** A `BusClient` that registered (a v2 client waits for `registered`). */
async function busPeer(
  url: string,
  register: object,
  onMessage: OnMessage,
  target: Target,
): Promise<Peer> {
  const noDelay = !target.endsWith("-builtin");
  const client = new BusClient(url, { register: () => register, noDelay });
  const protocol2 = isV2(target);
  const ready = new Promise((resolve) =>
    client.addEventListener(protocol2 ? "registered" : "open", resolve)
  );
  client.addEventListener("message", (event) => onMessage(event.message));
  client.start();
  await ready;
  return { send: (message) => void client.send(message), close: () => client.close() };
}

/** A seeded sequence of priorities, built once per size. */
function priorities(n: number): Uint8Array {
  const random = mulberry32(20261128);
  return Uint8Array.from({ length: n }, () => Math.floor(random() * 11));
}

/** A job request; only a v2 producer gives ids (a seed producer has no way to use them). */
function jobRequest(target: Target, tag: string, seq: number, priority: number): object {
  const payload = { priority, runtime: 1, seq, t: now() };
  return isV2(target)
    ? { cmd: "job_request", id: `${tag}${seq}`, payload }
    : { cmd: "job_request", payload };
}

function event(id: string, state: string): object {
  return state === "started"
    ? { cmd: "event", id, state, at: Date.now() }
    : { cmd: "event", id, state, result: { code: 0, durationMs: 0 } };
}

/** The payload inside whatever frame a scheduler got: relay (request), seed (bare), v2 (job). */
function payloadOf(target: Target, message: BusMessage): { seq: number; t: number } {
  const payload = isSeed(target) ? message : message.payload;
  return payload as { seq: number; t: number };
}

// ---------------------------------------------------------------------------------------------
// Flood

async function flood(
  server: Server,
  target: Target,
  schedulers: number,
  config: Config,
): Promise<FloodResult> {
  if (config.warmup > 0) await floodOnce(server, target, schedulers, config, config.warmup, "w");
  return await floodOnce(server, target, schedulers, config, config.jobs, "m");
}

async function floodOnce(
  { url, pid }: Server,
  target: Target,
  nScheds: number,
  config: Config,
  jobs: number,
  tag: string,
): Promise<FloodResult> {
  const prio = priorities(jobs);
  const receipt = new Float64Array(jobs);
  const acceptedAt = new Float64Array(jobs);
  const accToStart = new Float64Array(jobs);
  let sent = 0, answered = 0, received = 0, finished = 0, maxInFlight = 0;
  let firstSend = 0, lastReceipt = 0, lastFinish = 0;
  const { promise: done, resolve: finish } = Promise.withResolvers<void>();
  const v2 = isV2(target);
  const checkDone = (): void => {
    if (received === jobs && (!v2 || finished === jobs)) finish();
  };

  const pump = (): void => {
    while (sent < jobs && sent - answered < config.window) {
      producer.send(jobRequest(target, tag, sent, prio[sent]!)); // sent < jobs = prio.length
      sent++;
    }
    if (sent - received > maxInFlight) maxInFlight = sent - received;
  };
  const onReceipt = (message: BusMessage, sched: Peer): void => {
    const { seq, t } = payloadOf(target, message);
    const at = now();
    receipt[seq] = at - t;
    lastReceipt = at;
    received++;
    if (v2) {
      const id = message.id as string;
      sched.send(event(id, "started"));
      sched.send(event(id, "succeeded"));
    } else {
      answered++;
      pump();
    }
    checkDone();
  };
  const onProducerMessage = (message: BusMessage): void => {
    if (message.cmd === "accepted" || message.cmd === "rejected") {
      acceptedAt[Number(String(message.id).slice(tag.length))] = now();
      answered++;
      pump();
    } else if (message.cmd === "event") {
      const seq = Number(String(message.id).slice(tag.length));
      // seq < jobs: the id is one of ours (tag + seq).
      if (message.state === "started") accToStart[seq] = now() - acceptedAt[seq]!;
      else if (message.state === "succeeded") {
        finished++;
        lastFinish = now();
        checkDone();
      }
    }
  };

  const scheds: Peer[] = [];
  for (let i = 0; i < nScheds; i++) {
    const onMessage = (message: BusMessage): void => {
      // scheds[i] is pushed below, before any job is sent.
      if (!v2 || message.cmd === "job") onReceipt(message, scheds[i]!);
    };
    scheds.push(
      target === "relay"
        ? await barePeer(`${url}sub`, onMessage)
        : await busPeer(url, register("scheduler", target, config.slots, i), onMessage, target),
    );
  }
  const producer = target === "relay"
    ? await barePeer(`${url}pub`, () => {})
    : await busPeer(url, register("producer", target, 0, 0), onProducerMessage, target);
  if (target !== "relay") await awaitSchedulers(url, nScheds);

  const timeout = Promise.withResolvers<void>();
  const timer = setTimeout(timeout.resolve, config.timeoutMs);
  const cpuBefore: [number, number] = [cpuSeconds(pid), cpuSeconds("self")];
  firstSend = now();
  pump();
  const timedOut = await Promise.race([done.then(() => false), timeout.promise.then(() => true)]);
  const cpuAfter: [number, number] = [cpuSeconds(pid), cpuSeconds("self")];
  const wallS = (now() - firstSend) / 1000;
  clearTimeout(timer);
  await Promise.all([producer, ...scheds].map((peer) => peer.close()));

  const seconds = (lastReceipt - firstSend) / 1000;
  const result: FloodResult = {
    round: 0,
    target,
    schedulers: nScheds,
    jobs: received,
    seconds,
    deliveredPerS: received / seconds,
    sendToReceipt: stats(receipt.subarray(0, sent)),
    maxInFlight,
    cpu: {
      server: (cpuAfter[0] - cpuBefore[0]) / wallS,
      clients: (cpuAfter[1] - cpuBefore[1]) / wallS,
    },
    timedOut,
  };
  if (v2) {
    result.finishedPerS = finished / ((lastFinish - firstSend) / 1000);
    result.acceptedToStarted = stats(accToStart.subarray(0, sent));
  }
  return result;
}

function register(
  type: "producer" | "scheduler",
  target: Target,
  slots: number,
  i: number,
): object {
  if (isSeed(target)) return { cmd: "register", type };
  return type === "producer"
    ? { cmd: "register", type, protocol: 2, name: "bench-producer" }
    : { cmd: "register", type, protocol: 2, name: `bench-scheduler-${i}`, slots };
}

// ---------------------------------------------------------------------------------------------
// Probe: one v2 job at a time

async function probe(
  url: string,
  target: Target,
  nScheds: number,
  config: Config,
): Promise<ProbeResult> {
  const jobs = config.probe;
  const prio = priorities(jobs);
  const sendAt = new Float64Array(jobs);
  const accepted = new Float64Array(jobs);
  const started = new Float64Array(jobs);
  const succeeded = new Float64Array(jobs);
  let next: (() => void) | undefined;

  const scheds: Peer[] = [];
  for (let i = 0; i < nScheds; i++) {
    const onMessage = (message: BusMessage): void => {
      if (message.cmd !== "job") return;
      const id = message.id as string;
      const sched = scheds[i]!; // pushed below, before any job is sent
      sched.send(event(id, "started"));
      sched.send(event(id, "succeeded"));
    };
    const registration = register("scheduler", target, config.slots, i);
    scheds.push(await busPeer(url, registration, onMessage, target));
  }
  const onProducerMessage = (message: BusMessage): void => {
    const seq = Number(String(message.id).slice(1));
    if (message.cmd === "accepted") accepted[seq] = now();
    else if (message.cmd === "event" && message.state === "started") started[seq] = now();
    else if (message.cmd === "event" && message.state === "succeeded") {
      succeeded[seq] = now();
      next?.();
    }
  };
  const registration = register("producer", target, 0, 0);
  const producer = await busPeer(url, registration, onProducerMessage, target);
  await awaitSchedulers(url, nScheds);
  for (let seq = 0; seq < jobs; seq++) {
    const { promise, resolve } = Promise.withResolvers<void>();
    next = resolve;
    const timer = setTimeout(resolve, 5000);
    sendAt[seq] = now();
    producer.send(jobRequest(target, "p", seq, prio[seq]!)); // seq < jobs = prio.length
    await promise;
    clearTimeout(timer);
  }
  await Promise.all([producer, ...scheds].map((peer) => peer.close()));
  // a and b both hold `jobs` values: b[i] is in range.
  const diff = (a: Float64Array, b: Float64Array): Float64Array => a.map((x, i) => b[i]! - x);
  return {
    target,
    schedulers: nScheds,
    jobs,
    sendToAccepted: stats(diff(sendAt, accepted)),
    acceptedToStarted: stats(diff(accepted, started)),
    startedToSucceeded: stats(diff(started, succeeded)),
    sendToSucceeded: stats(diff(sendAt, succeeded)),
  };
}

// ---------------------------------------------------------------------------------------------
// Reporting

/** CPU seconds (user + system) a process has used so far, from Linux's `/proc`. */
function cpuSeconds(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime: ticks of 1/100 s
}

/** Percentiles of a sample that is never empty (`--jobs`, `--probe` and the window are >= 1). */
function stats(sample: Float64Array): Stats {
  const sorted = Float64Array.from(sample).sort();
  // Non-empty: every index below is in [0, length - 1].
  const at = (q: number): number =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  let over30 = 0;
  for (const x of sorted) if (x > 30) over30++;
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]!, over30 };
}

const ms = (x: number): string => x.toFixed(x < 10 ? 2 : 1);
const fmtStats = (s: Stats): string =>
  `p50 ${ms(s.p50)} p99 ${ms(s.p99)} max ${ms(s.max)} ms, ${s.over30} > 30 ms`;

/** CPU microseconds per delivered job, from a CPU share in cores. */
const perJob = (cores: number, r: FloodResult): string =>
  (cores / r.deliveredPerS * 1e6).toFixed(1);

function printFlood(r: FloodResult, all: FloodResult[]): void {
  const relay = all.find((x) =>
    x.round === r.round && x.target === "relay" &&
    x.schedulers === r.schedulers
  );
  const ratio = relay && r.target !== "relay"
    ? ` (${(r.deliveredPerS / relay.deliveredPerS).toFixed(2)} x relay)`
    : "";
  let line = `round ${r.round} ${r.target.padEnd(12)} ${r.schedulers} sched: ` +
    `${Math.round(r.deliveredPerS)} delivered/s${ratio}; send->receipt ${
      fmtStats(r.sendToReceipt)
    }; ` +
    `max in flight ${r.maxInFlight}; cpu server ${r.cpu.server.toFixed(2)} ` +
    `(${perJob(r.cpu.server, r)} µs/job) clients ${r.cpu.clients.toFixed(2)} ` +
    `(${perJob(r.cpu.clients, r)} µs/job)`;
  if (r.finishedPerS !== undefined) {
    line += `; ${Math.round(r.finishedPerS)} finished/s; accepted->started ` +
      fmtStats(r.acceptedToStarted!);
  }
  if (r.timedOut) line += ` TIMED OUT after ${r.jobs} jobs`;
  console.log(line);
}

function printProbe(r: ProbeResult): void {
  console.log(`probe ${r.target} ${r.schedulers} sched, ${r.jobs} jobs one at a time:`);
  console.log(`  send->accepted      ${fmtStats(r.sendToAccepted)}`);
  console.log(`  accepted->started   ${fmtStats(r.acceptedToStarted)}`);
  console.log(`  started->succeeded  ${fmtStats(r.startedToSucceeded)}`);
  console.log(`  send->succeeded     ${fmtStats(r.sendToSucceeded)}`);
}

const OPTIONS = {
  jobs: { type: "string", default: "100000" },
  window: { type: "string", default: "1000" },
  slots: { type: "string", default: "1000" },
  rounds: { type: "string", default: "1" },
  warmup: { type: "string", default: "5000" },
  probe: { type: "string", default: "300" },
  only: { type: "string", default: TARGETS.join(",") },
  timeout: { type: "string", default: "120" },
  json: { type: "string" },
} as const;

interface Parsed {
  config: Config;
  jsonPath: string | undefined;
}

function configure({ values }: Flags<typeof OPTIONS>): Parsed {
  const only = values.only.split(",").map((s) => s.trim());
  for (const target of only) {
    if (!TARGETS.includes(target as Target)) {
      throw new UsageError(`--only takes ${TARGETS.join(", ")}; got '${target}'`);
    }
  }
  return {
    config: {
      jobs: integerFlag("--jobs", values.jobs, { min: 1 }),
      window: integerFlag("--window", values.window, { min: 1 }),
      slots: integerFlag("--slots", values.slots, { min: 1 }),
      rounds: integerFlag("--rounds", values.rounds, { min: 1 }),
      warmup: integerFlag("--warmup", values.warmup),
      probe: integerFlag("--probe", values.probe),
      only: only as Target[],
      timeoutMs: integerFlag("--timeout", values.timeout, { min: 1 }) * 1000,
    },
    jsonPath: values.json,
  };
}

if (import.meta.main) Deno.exit(await main(Deno.args));
