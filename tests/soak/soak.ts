// deno-lint-ignore-file no-console
/**
 * `deno task soak`: the bus's promises under churn, not part of `deno test`. Starts the bus
 * CLI, 3 scheduler CLIs (`--exec /bin/sleep`: cheap jobs) and 2 producers, submits 10,000
 * short jobs, and SIGKILLs a random scheduler every few seconds (restarting it under the same
 * name). A protocol-2 monitor records every lifecycle event; at the end every accepted job
 * must have exactly one final outcome, and no job may have started while it was already
 * running. Prints a summary; exits 1 if a promise was broken.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { mulberry32 } from "../../producer/generator.ts";
import { Producer } from "../../producer/producer.ts";
import { Cli, startBus } from "../fixtures/e2e_cli.ts";
import { sleep } from "../../core/sleep.ts";
import { JobLedger } from "../fixtures/e2e_ledger.ts";
import { killBusSoak } from "./kill_bus.ts";

/** The job the schedulers run: `sleep <runtime>` (GNU sleep takes fractions). */
const SLEEP = "/bin/sleep";

const USAGE = `Usage: deno task soak [-- options]

Runs a bus, schedulers (--exec /bin/sleep) and producers, submits short jobs while killing
schedulers at random (SIGKILL, then restart), and checks that every accepted job has exactly
one final outcome and that none ran twice at once. Exit 0: promises kept; 1: broken.

Options:
  --jobs N          jobs in all, split between the producers (default 10000; 2000 with --buses)
  --schedulers N    scheduler processes (default 3)
  --producers N     producers (default 2; 3 with --buses)
  --slots N         slots per scheduler (default 5)
  --kill-every S    mean seconds between scheduler kills, 0 for none (default 3; 1 with --buses)
  --seed N          seed of the jobs and the kills (default 1)
  --kill-bus        also SIGKILL the bus (restarted on its --data directory, behind a relay that
                    holds the clients' port) and producer processes (restarted under the same
                    name); schedulers get a --state-dir; command jobs mixed in; also checks that
                    every owner heard every outcome and, from the schedulers' own records, that
                    no job ran on two schedulers at once
  --command-every N with --kill-bus: one job in N is a command job (sh), 0 for none (default 5)
  --recover-grace S with --kill-bus: the bus's --recover-grace (default 5)
  --buses N         the --kill-bus soak on N bus processes sharing one PostgreSQL (SIGKILLed and
                    restarted on their ports; every client gets every bus's URL, its own first);
                    also counts priority inversions (a start while a more urgent job had waited
                    over 100 ms; more than 10 % of the starts fails)
  --store URL       with --buses: postgres://USER@HOST:PORT/DB, an empty database the soak may
                    fill (default: a throwaway cluster from Debian's postgresql, as the tests do;
                    --buses defaults to 3 when --store is given)
  -h, --help        show this help`;

interface Config {
  jobs: number;
  schedulers: number;
  producers: number;
  slots: number;
  killEveryS: number;
  seed: number;
  killBus: boolean;
  commandEvery: number;
  recoverGraceS: number;
  buses: number;
  store?: string;
}

/** Most jobs a producer has in flight (unfinished) at once: keeps the bus's queue busy. */
const IN_FLIGHT = 150;
/** One job in this many runs past the schedulers' timeout (`-t 1`): `timed_out` outcomes. */
const LONG_EVERY = 100;

function parse(args: string[]): Config | "help" {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      jobs: { type: "string" },
      schedulers: { type: "string", default: "3" },
      producers: { type: "string" },
      slots: { type: "string", default: "5" },
      "kill-every": { type: "string" },
      seed: { type: "string", default: "1" },
      "kill-bus": { type: "boolean", default: false },
      "command-every": { type: "string", default: "5" },
      "recover-grace": { type: "string", default: "5" },
      buses: { type: "string" },
      store: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  const int = (flag: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) {
      throw new RangeError(`--${flag} must be an integer >= ${min}, got '${text}'`);
    }
    return n;
  };
  const store = values.store;
  if (store !== undefined && !/^postgres(ql)?:\/\//.test(store)) {
    throw new RangeError(`--store must be a postgres://USER@HOST:PORT/DB URL, got '${store}'`);
  }
  const buses = values.buses !== undefined
    ? int("buses", values.buses, 1)
    : store !== undefined
    ? 3
    : 0;
  const killEveryS = Number(values["kill-every"] ?? (buses > 0 ? "1" : "3"));
  if (!Number.isFinite(killEveryS) || killEveryS < 0) {
    throw new RangeError(`--kill-every must be a number >= 0, got '${values["kill-every"]}'`);
  }
  return {
    jobs: int("jobs", values.jobs ?? (buses > 0 ? "2000" : "10000"), 1),
    schedulers: int("schedulers", values.schedulers, 1),
    producers: int("producers", values.producers ?? (buses > 0 ? "3" : "2"), 1),
    slots: int("slots", values.slots, 1),
    killEveryS,
    seed: int("seed", values.seed, 0),
    killBus: values["kill-bus"] || buses > 0,
    commandEvery: int("command-every", values["command-every"], 0),
    recoverGraceS: int("recover-grace", values["recover-grace"], 0),
    buses,
    ...(store !== undefined && { store }),
  };
}

/** A protocol-2 monitor feeding `ledger`; resolves once registered. */
async function monitor(url: string, ledger: JobLedger): Promise<WebSocket> {
  const socket = new WebSocket(url);
  const registered = Promise.withResolvers<void>();
  socket.onopen = () =>
    socket.send(JSON.stringify({ cmd: "register", type: "monitor", protocol: 2, name: "soak" }));
  socket.onerror = () => registered.reject(new Error("the monitor could not connect"));
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data));
    if (message.cmd === "registered") registered.resolve();
    else ledger.record(message);
  };
  await registered.promise;
  return socket;
}

/**
 * Runs the soak.
 *
 * @param args Command-line arguments (a leading `--` is dropped).
 * @returns 0 if every accepted job had exactly one final outcome and none ran twice at once,
 *   1 otherwise, 2 for a bad flag.
 */
export async function main(args: string[]): Promise<number> {
  let config: Config | "help";
  try {
    config = parse(args[0] === "--" ? args.slice(1) : args);
  } catch (error) {
    console.error(`soak: ${(error as Error).message.split("\n")[0]}`);
    console.error(USAGE);
    return 2;
  }
  if (config === "help") {
    console.log(USAGE);
    return 0;
  }
  if (config.killBus) return await killBusSoak(config);
  const { jobs, slots, seed } = config;
  const random = mulberry32(seed);
  const say = (text: string): void => console.log(`${new Date().toISOString()} soak: ${text}`);
  const started = Date.now();
  const [bus, url] = await startBus();
  const schedulers: Cli[] = [];
  const startScheduler = (i: number): Cli =>
    schedulers[i] = Cli.run(
      "scheduler/main.ts",
      ["--url", url, "--name", `soak-${i + 1}`, "-s", String(slots), "-t", "1", "--exec", SLEEP],
      `soak-${i + 1}`,
    );
  const ledger = new JobLedger();
  const accepted = new Set<string>();
  let rejected = 0;
  const producers: Producer[] = [];
  let socket: WebSocket | undefined;
  let kills = 0;
  const stopKilling = new AbortController();
  try {
    socket = await monitor(url, ledger);
    for (let i = 0; i < config.schedulers; i++) startScheduler(i);
    say(
      `bus on ${url}; ${config.schedulers} schedulers x ${slots} slots (/bin/sleep); ` +
        `${config.producers} producers; ${jobs} jobs; a kill every ~${config.killEveryS} s; ` +
        `seed ${seed}`,
    );

    // The killer: SIGKILL a random scheduler, restart it under the same name.
    const killer = (async () => {
      if (config.killEveryS === 0) return;
      while (!stopKilling.signal.aborted) {
        await sleep(config.killEveryS * 1000 * (0.5 + random()), stopKilling.signal);
        if (stopKilling.signal.aborted) return;
        const i = Math.floor(random() * schedulers.length);
        await schedulers[i]!.proc.kill(); // random() < 1: i < schedulers.length
        kills++;
        await sleep(300);
        startScheduler(i);
      }
    })();

    // The producers: short jobs, random priorities, a bounded number in flight each.
    const perProducer = Math.ceil(jobs / config.producers);
    const feeding = Array.from({ length: config.producers }, async (_, p) => {
      const producer = new Producer(url, { name: `soak-p${p + 1}` });
      producers.push(producer);
      producer.addEventListener("job", ({ change, job }) => {
        if (change === "accepted" || change === "duplicate") accepted.add(job.id);
        else if (change === "rejected") rejected++;
      });
      producer.start();
      const count = Math.min(perProducer, jobs - p * perProducer);
      while (producer.produced < count) {
        if (producer.unfinished >= IN_FLIGHT) {
          await sleep(5);
          continue;
        }
        const long = random() < 1 / LONG_EVERY;
        const runtime = long ? 1.5 : Math.round((0.02 + random() * 0.18) * 1000) / 1000;
        producer.submit({ priority: Math.floor(random() * 11), runtime });
      }
      await producer.onSettled();
    });
    let lastReport = Date.now();
    const progress = setInterval(() => {
      if (Date.now() - lastReport < 10_000) return;
      lastReport = Date.now();
      say(`${accepted.size} accepted, ${finalCount(ledger)} finished, ${kills} kills`);
    }, 1000);
    // A hang is a failure too: give up after a generous limit.
    const limitMs = 60_000 + jobs * 100;
    const giveUp = new AbortController();
    let settled = false;
    try {
      settled = await Promise.race([
        Promise.all(feeding).then(() => true),
        sleep(limitMs, giveUp.signal).then(() => false),
      ]);
    } finally {
      giveUp.abort();
      clearInterval(progress);
      stopKilling.abort();
      await killer;
    }
    // The monitor's socket may lag the producers' by a few events.
    for (let i = 0; i < 100 && ledger.unsettled(accepted).length > 0; i++) await sleep(50);
    const elapsedS = (Date.now() - started) / 1000;
    const status = await (await fetch(new URL("/status", url.replace("ws", "http")))).json();

    const unsettled = ledger.unsettled(accepted);
    const outcomes: Record<string, number> = {};
    let requeues = 0;
    let evictions = 0;
    for (const [id, states] of ledger.states) {
      if (!accepted.has(id)) continue;
      const outcome = ledger.outcome(id) ?? "none";
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      requeues += states.filter((state) => state === "requeued").length;
      evictions += states.filter((state) => state === "evicted").length;
    }
    const lines = [
      `accepted ${accepted.size} of ${jobs} jobs (rejected ${rejected})`,
      `outcomes: ${Object.entries(outcomes).map(([k, v]) => `${k} ${v}`).join(", ")}`,
      `scheduler kills (SIGKILL + restart): ${kills}; evictions ${evictions}; ` +
      `requeues ${requeues}`,
      `jobs without exactly one final outcome: ${unsettled.length}`,
      `started while already running (duplicates): ${ledger.concurrent}`,
      `other anomalies (events after the final one): ${
        ledger.anomalies.length - ledger.concurrent
      }`,
      `output pieces dropped by the bus for slow readers: ${status.droppedOutput}`,
      `elapsed ${elapsedS.toFixed(1)} s (${(accepted.size / elapsedS).toFixed(0)} jobs/s)`,
    ];
    if (!settled) {
      lines.push(`GAVE UP after ${limitMs / 1000} s: producers still wait for outcomes`);
    }
    for (const line of lines) say(line);
    for (const line of [...unsettled, ...ledger.anomalies].slice(0, 20)) say(`  ${line}`);
    const ok = settled && unsettled.length === 0 && ledger.concurrent === 0 &&
      accepted.size === jobs;
    say(ok ? "PASS: every accepted job has exactly one final outcome" : "FAIL");
    return ok ? 0 : 1;
  } finally {
    stopKilling.abort();
    await Promise.all(producers.map((producer) => producer.close()));
    socket?.close();
    await Promise.all(schedulers.map((cli) => cli.proc.terminate()));
    await bus.proc.terminate();
  }
}

function finalCount(ledger: JobLedger): number {
  let n = 0;
  for (const id of ledger.states.keys()) n += ledger.finals(id) > 0 ? 1 : 0;
  return n;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
