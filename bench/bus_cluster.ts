// deno-lint-ignore-file no-console
/**
 * Several buses on one PostgreSQL (issue 13, §4), end to end: `deno task bench-cluster`.
 *
 * Setups, each bus CLI in a process of its own, the clients in this process:
 *
 * - `sqlite`: one bus on the embedded store (`--data DIR`, `--sync full`): the baseline;
 * - `pg1`: one bus on PostgreSQL (`--store postgres://…`);
 * - `pg2`: two buses on one PostgreSQL; the first leads. Producers on the follower, the
 *   scheduler on the leader (`pg2-pf`), or producers on the leader and the scheduler on the
 *   follower (`pg2-sf`): every job and every `started` crosses the `changes` log.
 *
 * Phases, each on a fresh database (and data directory):
 *
 * - **accept**: `--producers` v2 producers flood `--jobs` job requests (at most `--window`
 *   unanswered each), no scheduler: durable acceptances per second (only `accepted` counts).
 * - **flow**: one v2 scheduler (`--slots`, reports `started` and `succeeded` as soon as a job
 *   arrives) and one producer sending `--flow` jobs (at most `--flow-window` unanswered):
 *   accepted → started as the producer sees it (its `accepted` to the job's `started` event).
 * - **idle**: the same scheduler, `--probe` jobs one at a time: accepted → started, idle.
 *
 * PostgreSQL is the throwaway cluster of `tests/fixtures/pg_cluster.ts` (or
 * `SCHED_TEST_PG_URL`). Ratios are against `sqlite` of the same run. From each bus's
 * `/metrics`: its store commits and their mean time; from `/proc`: CPU of the buses and of
 * PostgreSQL (the postmaster's children) per job.
 *
 * @module
 */

import { type Flags, integerFlag, type MainOptions, runCli, UsageError } from "../cli/mod.ts";
import { BusClient, type BusMessage } from "../bus/client.ts";
import { type BusProcess, cpuSeconds, startBusProcess, stopBusProcess } from "./bus_process.ts";
import { pg, PG_SKIPPED } from "../tests/fixtures/pg_cluster.ts";

interface Config {
  jobs: number;
  window: number;
  producers: number;
  flow: number;
  flowWindow: number;
  probe: number;
  slots: number;
  setups: Setup[];
  timeoutMs: number;
}

type Setup = "sqlite" | "pg1" | "pg2-pf" | "pg2-sf";
const SETUPS: readonly Setup[] = ["sqlite", "pg1", "pg2-pf", "pg2-sf"];

type Bus = BusProcess;

/** The buses of one setup: where the producers and the scheduler connect. */
interface Cluster {
  buses: Bus[];
  producerBus: Bus;
  schedulerBus: Bus;
  pgPids: number[];
}

const USAGE = `Usage: deno task bench-cluster [-- options]

Buses on PostgreSQL against the embedded store (see docs/bench.md, "Several buses on PostgreSQL").

Options:
  --setups LIST     comma-separated, of sqlite,pg1,pg2-pf,pg2-sf (default all)
  --jobs N          job requests per accept flood (default 20000)
  --window N        most unanswered requests per producer in the accept flood (default 1000)
  --producers N     producers in the accept flood (default 2)
  --flow N          jobs of the flow phase (default 5000)
  --flow-window N   most unanswered requests in the flow phase (default 100)
  --probe N         jobs one at a time in the idle phase (default 200)
  --slots N         slots of the scheduler (default 1000)
  --timeout S       give up on a phase after S seconds (default 120)
  -h, --help        show this help`;

const now = (): number => performance.now();

/**
 * Runs the benchmark.
 *
 * @param args Command-line arguments (a leading `--` is dropped).
 * @param options Injection points for the harness's own lines.
 * @returns 0 when done, 2 on a bad flag.
 * @example
 * ```ts
 * import { main } from "./bus_cluster.ts";
 * console.log(await main(["--help"])); // 0
 * ```
 */
export function main(args: string[], options: MainOptions = {}): Promise<number> {
  return runCli(
    { name: "bench-cluster", usage: USAGE, options: OPTIONS, configure, run },
    args,
    options,
  );
}

interface Figures {
  acceptRate: number;
  acceptNote: string;
  flowRate: number;
  flow: number[];
  idle: number[];
  notes: string[];
}

async function run(config: Config): Promise<number> {
  const version = new Deno.Command(Deno.execPath(), { args: ["--version"] }).outputSync();
  console.log(
    `${new Date().toISOString()}, nproc ${navigator.hardwareConcurrency}, ` +
      `${new TextDecoder().decode(version.stdout).split("\n")[0]}, load ${Deno.loadavg()}`,
  );
  if (pg === undefined) {
    console.log(`SKIPPED: PostgreSQL setups: ${PG_SKIPPED}`);
    config.setups = config.setups.filter((setup) => setup === "sqlite");
  }
  const tmp = await Deno.makeTempDir({ prefix: "bus_cluster_bench_" });
  const results = new Map<Setup, Figures>();
  let n = 0;
  try {
    for (const setup of config.setups) {
      const fresh = (): Promise<Cluster> => startCluster(setup, `${tmp}/d${++n}`);
      const figures: Figures = {
        acceptRate: 0,
        acceptNote: "",
        flowRate: 0,
        flow: [],
        idle: [],
        notes: [],
      };
      let cluster = await fresh();
      const a = await acceptPhase(cluster, config);
      figures.acceptRate = a.rate;
      figures.acceptNote = a.note;
      await stopCluster(cluster);
      cluster = await fresh();
      const f = await flowPhase(cluster, config, config.flow, config.flowWindow, "f");
      figures.flowRate = f.rate;
      figures.flow = f.latencies;
      figures.notes.push(`flow: ${f.note}`);
      await stopCluster(cluster);
      cluster = await fresh();
      const p = await flowPhase(cluster, config, config.probe, 1, "i");
      figures.idle = p.latencies;
      figures.notes.push(`idle: ${p.note}`);
      await stopCluster(cluster);
      results.set(setup, figures);
      report(setup, figures, results.get("sqlite"));
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  console.log(`load after: ${Deno.loadavg()}`);
  return 0;
}

function report(setup: Setup, f: Figures, base: Figures | undefined): void {
  const ratio = (x: number, b: number | undefined): string =>
    base === undefined || b === undefined || setup === "sqlite" ? "" : ` (${(x / b).toFixed(2)}x)`;
  const [fp50, fp99] = [pct(f.flow, 0.5), pct(f.flow, 0.99)];
  const [ip50, ip99] = [pct(f.idle, 0.5), pct(f.idle, 0.99)];
  const b = base && {
    fp50: pct(base.flow, 0.5),
    fp99: pct(base.flow, 0.99),
    ip50: pct(base.idle, 0.5),
    ip99: pct(base.idle, 0.99),
  };
  console.log(
    `${setup.padEnd(7)} accept ${Math.round(f.acceptRate)}/s${
      ratio(f.acceptRate, base?.acceptRate)
    }` +
      ` [${f.acceptNote}]\n` +
      `        flow ${Math.round(f.flowRate)} started/s${ratio(f.flowRate, base?.flowRate)};` +
      ` accepted->started p50 ${fp50.toFixed(2)} ms${ratio(fp50, b?.fp50)}, p99 ` +
      `${fp99.toFixed(2)} ms${ratio(fp99, b?.fp99)}\n` +
      `        idle accepted->started p50 ${ip50.toFixed(2)} ms${ratio(ip50, b?.ip50)}, p99 ` +
      `${ip99.toFixed(2)} ms${ratio(ip99, b?.ip99)}\n` +
      f.notes.map((note) => `        ${note}`).join("\n"),
  );
}

function pct(sample: number[], q: number): number {
  if (sample.length === 0) return NaN;
  const sorted = [...sample].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

// ---------------------------------------------------------------------------------------------
// Buses

const COMMON = ["--max-queue", "1000000", "--max-rate", "1000000000", "--summary-every", "0"];

async function startCluster(setup: Setup, dir: string): Promise<Cluster> {
  if (setup === "sqlite") {
    const bus = await startBus(["--data", dir, "--sync", "full"]);
    return { buses: [bus], producerBus: bus, schedulerBus: bus, pgPids: [] };
  }
  const url = pg!.createDb("bench_cluster");
  const pgPids = postgresPids(url);
  const leader = await startBus(["--store", url], /leads the cluster/);
  if (setup === "pg1") {
    return { buses: [leader], producerBus: leader, schedulerBus: leader, pgPids };
  }
  const follower = await startBus(["--store", url]); // a follower says nothing at start
  return setup === "pg2-pf"
    ? { buses: [leader, follower], producerBus: follower, schedulerBus: leader, pgPids }
    : { buses: [leader, follower], producerBus: leader, schedulerBus: follower, pgPids };
}

function startBus(extra: string[], ready?: RegExp): Promise<Bus> {
  return startBusProcess([...COMMON, ...extra], ready ? { ready } : {});
}

async function stopCluster(cluster: Cluster): Promise<void> {
  for (const bus of [...cluster.buses].reverse()) await stopBusProcess(bus, "SIGTERM");
}

/** A v2 client that registered. */
async function client(
  url: string,
  register: object,
  onMessage: (message: BusMessage) => void,
): Promise<BusClient> {
  const c = new BusClient(url, { register: () => register });
  const ready = new Promise((resolve) => c.addEventListener("registered", resolve));
  c.addEventListener("message", (event) => onMessage(event.message));
  c.start();
  await ready;
  return c;
}

const producerReg = (name: string): object => ({
  cmd: "register",
  type: "producer",
  protocol: 2,
  name,
});

// ---------------------------------------------------------------------------------------------
// Phases

async function acceptPhase(
  cluster: Cluster,
  config: Config,
): Promise<{ rate: number; note: string }> {
  const per = Math.ceil(config.jobs / config.producers);
  let accepted = 0, rejected = 0, answered = 0, reason = "", last = 0;
  const { promise: done, resolve: finish } = Promise.withResolvers<void>();
  const clients: BusClient[] = [];
  const pumps: (() => void)[] = [];
  for (let p = 0; p < config.producers; p++) {
    const total = Math.min(per, config.jobs - p * per);
    let sent = 0, mine = 0;
    const pump = (): void => {
      while (sent < total && sent - mine < config.window) {
        const payload = { priority: (sent * 7) % 11, runtime: 1, name: "bench" };
        void clients[p]!.send({ cmd: "job_request", id: `p${p}-${sent}`, payload });
        sent++;
      }
    };
    pumps.push(pump);
    clients.push(
      await client(cluster.producerBus.url, producerReg(`bench-p${p}`), (message) => {
        if (message.cmd !== "accepted" && message.cmd !== "rejected") return;
        if (message.cmd === "accepted") accepted++;
        else {
          rejected++;
          reason ||= String(message.reason);
        }
        mine++;
        answered++;
        last = now();
        if (answered === config.jobs) finish();
        pump();
      }),
    );
  }
  const timer = setTimeout(finish, config.timeoutMs);
  const cpu0 = cpuOf(cluster);
  const m0 = await commits(cluster);
  const t0 = now();
  for (const pump of pumps) pump();
  await done;
  clearTimeout(timer);
  const cpu1 = cpuOf(cluster);
  const m1 = await commits(cluster);
  await Promise.all(clients.map((c) => c.close()));
  const rate = accepted / ((last - t0) / 1000);
  const note = `accepted ${accepted}, rejected ${rejected}${reason ? ` (${reason})` : ""}` +
    `${answered < config.jobs ? ", TIMED OUT" : ""}; ${cpuNote(cpu0, cpu1, accepted)}; ` +
    commitNote(m0, m1, accepted);
  return { rate, note };
}

async function flowPhase(
  cluster: Cluster,
  config: Config,
  jobs: number,
  window: number,
  tag: string,
): Promise<{ rate: number; latencies: number[]; note: string }> {
  const acceptedAt = new Float64Array(jobs);
  const latencies: number[] = [];
  let sent = 0, answered = 0, started = 0, last = 0;
  const { promise: done, resolve: finish } = Promise.withResolvers<void>();
  const warm = Promise.withResolvers<void>();
  const sched: BusClient = await client(
    cluster.schedulerBus.url,
    { cmd: "register", type: "scheduler", protocol: 2, name: "bench-sched", slots: config.slots },
    (message) => {
      if (message.cmd !== "job") return;
      const id = String(message.id);
      void sched.send({ cmd: "event", id, state: "started", at: Date.now() });
      void sched.send({
        cmd: "event",
        id,
        state: "succeeded",
        result: { code: 0, durationMs: 0 },
      });
    },
  );
  const pump = (): void => {
    while (sent < jobs && sent - started < window) {
      const payload = { priority: (sent * 7) % 11, runtime: 1, name: "bench" };
      void producer.send({ cmd: "job_request", id: `${tag}${sent}`, payload });
      sent++;
    }
  };
  const producer = await client(cluster.producerBus.url, producerReg("bench-flow"), (message) => {
    const id = String(message.id);
    if (id === "warm") {
      if (message.cmd === "event" && message.state === "started") warm.resolve();
      return;
    }
    const seq = Number(id.slice(tag.length));
    if (message.cmd === "accepted") {
      acceptedAt[seq] = now();
      answered++;
    } else if (message.cmd === "event" && message.state === "started") {
      latencies.push(now() - acceptedAt[seq]!);
      started++;
      last = now();
      if (started === jobs) finish();
      pump();
    }
  });
  // A job through the whole path first: the scheduler is known wherever placement happens.
  void producer.send({ cmd: "job_request", id: "warm", payload: { priority: 1, runtime: 1 } });
  const warmTimer = setTimeout(
    () => warm.reject(new Error("the warm-up job never started")),
    30_000,
  );
  await warm.promise;
  clearTimeout(warmTimer);
  const timer = setTimeout(finish, config.timeoutMs);
  const cpu0 = cpuOf(cluster);
  const m0 = await commits(cluster);
  const t0 = now();
  pump();
  await done;
  clearTimeout(timer);
  const cpu1 = cpuOf(cluster);
  const m1 = await commits(cluster);
  await Promise.all([producer.close(), sched.close()]);
  const note = `${jobs} jobs, window ${window}: accepted ${answered}, started ${started}` +
    `${started < jobs ? ", TIMED OUT" : ""}; ${cpuNote(cpu0, cpu1, started)}; ` +
    commitNote(m0, m1, started);
  return { rate: started / ((last - t0) / 1000), latencies, note };
}

// ---------------------------------------------------------------------------------------------
// /metrics and /proc

interface CommitCounts {
  count: number;
  sum: number;
}

/** Store commits of each bus so far, and their summed seconds. */
function commits(cluster: Cluster): Promise<CommitCounts[]> {
  return Promise.all(cluster.buses.map(async (bus) => {
    const text = await (await fetch(bus.url.replace(/^ws/, "http") + "metrics")).text();
    return {
      count: Number(text.match(/^sched_store_commit_seconds_count (\S+)/m)?.[1] ?? NaN),
      sum: Number(text.match(/^sched_store_commit_seconds_sum (\S+)/m)?.[1] ?? NaN),
    };
  }));
}

function commitNote(before: CommitCounts[], after: CommitCounts[], jobs: number): string {
  return after.map((a, i) => {
    const count = a.count - before[i]!.count;
    if (count === 0) return `bus ${i}: no commits`;
    const ms = (a.sum - before[i]!.sum) / count * 1000;
    return `bus ${i}: ${count} commits (${(jobs / count).toFixed(1)} jobs each, mean ` +
      `${ms.toFixed(2)} ms)`;
  }).join(", ");
}

interface Cpu {
  at: number;
  buses: number[];
  pg: number;
}

function cpuOf(cluster: Cluster): Cpu {
  const pgCpu = cluster.pgPids.length === 0 ? 0 : postgresChildren(cluster.pgPids[0]!)
    .reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  return { at: now(), buses: cluster.buses.map((bus) => cpuSeconds(bus.pid)), pg: pgCpu };
}

function cpuNote(a: Cpu, b: Cpu, jobs: number): string {
  const wall = (b.at - a.at) / 1000;
  const parts = b.buses.map((x, i) => {
    const s = x - a.buses[i]!;
    return `bus ${i} ${(s / wall).toFixed(2)} core (${(s / jobs * 1e6).toFixed(0)} µs/job)`;
  });
  const pgS = b.pg - a.pg;
  parts.push(`postgres ${(pgS / wall).toFixed(2)} core (${(pgS / jobs * 1e6).toFixed(0)} µs/job)`);
  return `CPU ${parts.join(", ")}; bench ${(Deno.loadavg()[0] ?? 0).toFixed(1)} load`;
}

/** The postmaster serving `url` (by its `-p PORT` on the command line), or none. */
function postgresPids(url: string): number[] {
  const port = new URL(url).port;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      if (cmd[0]?.endsWith("postgres") && cmd.includes(String(port))) return [Number(entry.name)];
      if (cmd.some((arg) => arg.includes(`-p ${port}`)) && cmd[0]?.includes("postgres")) {
        return [Number(entry.name)];
      }
    } catch {
      // gone
    }
  }
  return [];
}

/** The postmaster and its children (backends, WAL writer, checkpointer, ...). */
function postgresChildren(postmaster: number): number[] {
  const pids = [postmaster];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === postmaster) pids.push(Number(entry.name));
    } catch {
      // gone
    }
  }
  return pids;
}

const OPTIONS = {
  setups: { type: "string", default: SETUPS.join(",") },
  jobs: { type: "string", default: "20000" },
  window: { type: "string", default: "1000" },
  producers: { type: "string", default: "2" },
  flow: { type: "string", default: "5000" },
  "flow-window": { type: "string", default: "100" },
  probe: { type: "string", default: "200" },
  slots: { type: "string", default: "1000" },
  timeout: { type: "string", default: "120" },
} as const;

function configure({ values }: Flags<typeof OPTIONS>): Config {
  const setups = values.setups.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const setup of setups) {
    if (!(SETUPS as readonly string[]).includes(setup)) {
      throw new UsageError(`--setups: unknown setup "${setup}" (known: ${SETUPS.join(", ")})`);
    }
  }
  return {
    setups: setups as Setup[],
    jobs: integerFlag("--jobs", values.jobs, { min: 1 }),
    window: integerFlag("--window", values.window, { min: 1 }),
    producers: integerFlag("--producers", values.producers, { min: 1 }),
    flow: integerFlag("--flow", values.flow, { min: 1 }),
    flowWindow: integerFlag("--flow-window", values["flow-window"], { min: 1 }),
    probe: integerFlag("--probe", values.probe, { min: 1 }),
    slots: integerFlag("--slots", values.slots, { min: 1 }),
    timeoutMs: integerFlag("--timeout", values.timeout, { min: 1 }) * 1000,
  };
}

if (import.meta.main) Deno.exit(await main(Deno.args));
