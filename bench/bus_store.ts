// deno-lint-ignore-file no-console
/**
 * The durable store on the bus (issue 11, §7), end to end: `deno task bench-bus-store`.
 *
 * Each scenario starts the bus CLI in a process of its own (a core of its own on a 2-core
 * machine) and runs the clients in this process.
 *
 * - **accept**: `--producers` v2 producers flood `--jobs` job requests (at most `--window` each
 *   unanswered), with no scheduler: every job waits in the bus. Counted are `accepted` answers
 *   only (a `rejected` is not an acceptance: counted apart). The same flood against `--memory`,
 *   `--data DIR` (`--sync full`, the default) and `--data DIR --sync normal`, in this order, each
 *   round: the ratio is against `--memory` of the same round. After the flood the bus's RSS
 *   (`VmRSS` of `/proc/PID/status`) with its jobs all waiting.
 * - **recover**: a data directory holding `--jobs` waiting jobs (the `--data` flood's, the bus
 *   stopped with SIGKILL), restarted `--recover` times: the time from the spawn of the bus to its
 *   listening line, to the first `/health` answer and to the first `accepted` of a new producer;
 *   and the RSS then. The same for an empty data directory (the CLI's own start).
 *
 * @module
 */

import { type Flags, integerFlag, type MainOptions, runCli } from "../cli/mod.ts";
import { BusClient, type BusMessage } from "../bus/client.ts";
import {
  type BusProcess,
  cpuSeconds,
  rssMb,
  startBusProcess,
  stopBusProcess,
} from "./bus_process.ts";

interface Config {
  jobs: number;
  window: number;
  producers: number;
  rounds: number;
  recover: number;
  timeoutMs: number;
  /** V8 flags for the bus's process (`--v8-flags=`), "" for none. */
  v8: string;
}

type Mode = "memory" | "full" | "normal";
const MODES: readonly Mode[] = ["memory", "full", "normal"];

type Bus = BusProcess;

const USAGE = `Usage: deno task bench-bus-store [-- options]

The bus's durable store on loopback (see docs/bench.md, "The durable store").

Options:
  --jobs N        job requests per flood, all left waiting (default 100000)
  --window N      most unanswered requests per producer (default 2000)
  --producers N   producers flooding at once (default 2)
  --rounds N      rounds of the three floods (default 1)
  --recover N     restarts of a data directory holding the waiting jobs, 0 to skip (default 3)
  --timeout S     give up on a flood after S seconds (default 120)
  --v8 FLAGS      V8 flags for the bus's process, as deno's --v8-flags= (default none)
  -h, --help      show this help`;

const now = (): number => performance.now();

/**
 * Runs the benchmark.
 *
 * @param args Command-line arguments (a leading `--` is dropped).
 * @param options Injection points for the harness's own lines.
 * @returns 0 when done, 2 on a bad flag.
 * @example
 * ```ts
 * import { main } from "./bus_store.ts";
 * console.log(await main(["--help"])); // 0
 * ```
 */
export function main(args: string[], options: MainOptions = {}): Promise<number> {
  return runCli(
    { name: "bench-bus-store", usage: USAGE, options: OPTIONS, configure, run },
    args,
    options,
  );
}

async function run(config: Config): Promise<number> {
  const version = new Deno.Command(Deno.execPath(), { args: ["--version"] }).outputSync();
  console.log(
    `${new Date().toISOString()}, nproc ${navigator.hardwareConcurrency}, ` +
      `${new TextDecoder().decode(version.stdout).split("\n")[0]}, load ${Deno.loadavg()}`,
  );
  console.log(
    `accept: ${config.jobs} jobs, ${config.producers} producers, window ${config.window} each`,
  );
  const tmp = await Deno.makeTempDir({ prefix: "bus_store_bench_" });
  try {
    let kept = "";
    for (let round = 1; round <= config.rounds; round++) {
      let memoryRate = 0;
      for (const mode of MODES) {
        const dir = mode === "memory" ? undefined : `${tmp}/r${round}-${mode}`;
        const bus = await startBus(
          mode === "memory" ? ["--memory"] : busArgs(dir!, mode),
          config.v8,
        );
        const r = await acceptFlood(bus, config);
        const rss = rssMb(bus.pid);
        const commits = await commitCount(bus.url);
        if (mode === "full") {
          // SIGKILL: the state a crash leaves, for the recovery runs.
          await stopBus(bus, "SIGKILL");
          kept = dir!;
        } else await stopBus(bus, "SIGTERM");
        if (mode === "memory") memoryRate = r.rate;
        const ratio = mode === "memory" ? "" : ` (${(r.rate / memoryRate).toFixed(2)} x memory)`;
        console.log(
          `round ${round} ${mode.padEnd(6)}: ${Math.round(r.rate)} accepted/s${ratio}; ` +
            `accepted ${r.accepted}, rejected ${r.rejected}${r.reason ? ` (${r.reason})` : ""}` +
            `${r.timedOut ? ", TIMED OUT" : ""}; cpu bus ${r.cpuBus.toFixed(2)} ` +
            `(${(r.cpuBus / r.rate * 1e6).toFixed(1)} µs/job); RSS at ${r.accepted} ` +
            `waiting ${rss.toFixed(1)} MB; ${commits} commits ` +
            `(${(r.accepted / commits).toFixed(1)} jobs/commit)`,
        );
      }
    }
    if (config.recover > 0 && kept) {
      await recoverRuns("empty", `${tmp}/empty`, config);
      await recoverRuns(`${config.jobs} waiting`, kept, config);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  console.log(`load after: ${Deno.loadavg()}`);
  return 0;
}

function busArgs(dir: string, mode: Mode): string[] {
  return ["--data", dir, "--sync", mode];
}

// ---------------------------------------------------------------------------------------------
// The bus in its own process

function startBus(extra: string[], v8: string): Promise<Bus> {
  return startBusProcess([...COMMON, ...extra], { v8 });
}

/** What every bus of this bench runs with: no limit in the way of the flood, no summary. */
const COMMON = ["--max-queue", "1000000", "--max-rate", "1000000000", "--summary-every", "0"];

const stopBus = stopBusProcess;

/** A v2 producer that registered. */
async function producer(
  url: string,
  name: string,
  onMessage: (message: BusMessage) => void,
): Promise<BusClient> {
  const client = new BusClient(url, {
    register: () => ({ cmd: "register", type: "producer", protocol: 2, name }),
  });
  const ready = new Promise((resolve) => client.addEventListener("registered", resolve));
  client.addEventListener("message", (event) => onMessage(event.message));
  client.start();
  await ready;
  return client;
}

// ---------------------------------------------------------------------------------------------
// The flood of acceptances

interface AcceptResult {
  accepted: number;
  rejected: number;
  reason: string;
  rate: number;
  cpuBus: number;
  timedOut: boolean;
}

async function acceptFlood(
  { url, pid }: Bus,
  config: Config,
): Promise<AcceptResult> {
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
      await producer(url, `bench-producer-${p}`, (message) => {
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
  const cpu0 = cpuSeconds(pid);
  const t0 = now();
  for (const pump of pumps) pump();
  await done;
  clearTimeout(timer);
  const cpuBus = (cpuSeconds(pid) - cpu0) / ((now() - t0) / 1000);
  await Promise.all(clients.map((client) => client.close()));
  return {
    accepted,
    rejected,
    reason,
    rate: accepted / ((last - t0) / 1000),
    cpuBus,
    timedOut: answered < config.jobs,
  };
}

// ---------------------------------------------------------------------------------------------
// Recovery

async function recoverRuns(label: string, dir: string, config: Config): Promise<void> {
  for (let i = 1; i <= config.recover; i++) {
    const t0 = now();
    const bus = await startBus(busArgs(dir, "full"), config.v8);
    const health = bus.url.replace(/^ws/, "http") + "health";
    let healthMs = 0;
    for (;;) {
      try {
        const response = await fetch(health);
        const body = await response.json();
        healthMs = now() - t0;
        if (i === 1) console.log(`  /health: ${JSON.stringify(body).slice(0, 300)}`);
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
    const { promise, resolve } = Promise.withResolvers<string>();
    const client = await producer(bus.url, `recover-${i}`, (message) => {
      if (message.cmd === "accepted" || message.cmd === "rejected") resolve(String(message.cmd));
    });
    void client.send({
      cmd: "job_request",
      id: `recover-${Date.now()}-${i}`,
      payload: { priority: 5, runtime: 1 },
    });
    const answer = await promise;
    const acceptedMs = now() - t0;
    await client.close();
    const rss = rssMb(bus.pid);
    await stopBus(bus, "SIGKILL");
    console.log(
      `recover ${label} #${i}: spawn->listening ${bus.listenMs.toFixed(0)} ms, ->/health ` +
        `${healthMs.toFixed(0)} ms, ->first ${answer} ${acceptedMs.toFixed(0)} ms; RSS ` +
        `${rss.toFixed(1)} MB`,
    );
  }
}

/** The bus's store commits so far, from its `/metrics`. */
async function commitCount(url: string): Promise<number> {
  const text = await (await fetch(url.replace(/^ws/, "http") + "metrics")).text();
  return Number(text.match(/^sched_store_commit_seconds_count (\d+)/m)?.[1] ?? NaN);
}

// ---------------------------------------------------------------------------------------------
// /proc

const OPTIONS = {
  jobs: { type: "string", default: "100000" },
  window: { type: "string", default: "2000" },
  producers: { type: "string", default: "2" },
  rounds: { type: "string", default: "1" },
  recover: { type: "string", default: "3" },
  timeout: { type: "string", default: "120" },
  v8: { type: "string", default: "" },
} as const;

function configure({ values }: Flags<typeof OPTIONS>): Config {
  return {
    jobs: integerFlag("--jobs", values.jobs, { min: 1 }),
    window: integerFlag("--window", values.window, { min: 1 }),
    producers: integerFlag("--producers", values.producers, { min: 1 }),
    rounds: integerFlag("--rounds", values.rounds, { min: 1 }),
    recover: integerFlag("--recover", values.recover),
    timeoutMs: integerFlag("--timeout", values.timeout, { min: 1 }) * 1000,
    v8: values.v8,
  };
}

if (import.meta.main) Deno.exit(await main(Deno.args));
