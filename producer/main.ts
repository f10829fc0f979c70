/**
 * `deno task producer`: submits random test jobs to the bus, like the seed's producer, and
 * prints the feedback the bus gives on them.
 *
 * @module
 */

import {
  type CliIo,
  CREDENTIAL_FLAGS,
  CREDENTIAL_USAGE_ROWS,
  type Credentials,
  type Flags,
  formatUsage,
  integerFlag,
  type MainOptions,
  plural,
  readCredentials,
  runCli,
  seconds,
  secondsFlag,
  UsageError,
  wsUrlListFlag,
  wsUrlUsageRow,
} from "../cli/mod.ts";
import { sleep } from "../core/sleep.ts";
import { DEFAULT_BACKOFF } from "../bus/backoff.ts";
import { ShutdownSignal } from "../process/shutdown_signal.ts";
import { MAX_PRIORITY, MIN_PRIORITY } from "../scheduler/job.ts";
import { type IntRange, JobGenerator } from "./generator.ts";
import { JobTimes } from "./job_times.ts";
import { type ProducedJob, Producer, type ProducerOutcome } from "./producer.ts";

/** Exit code: `--wait`, and some job failed, timed out, was cancelled, evicted or rejected. */
export const EXIT_JOB_FAILED = 1;
/** Exit code: `--wait`, and Ctrl-C or SIGTERM came before every job had its outcome. */
export const EXIT_UNFINISHED = 3;

/** Outcomes that are a job not done: with `--wait`, any of them makes the exit code 1. */
const NOT_DONE: ReadonlySet<ProducerOutcome> = new Set([
  "failed",
  "timed_out",
  "cancelled",
  "evicted",
  "rejected",
]);

/** The usage text printed by `--help` and after a bad flag. */
export const USAGE: string = formatUsage({
  command: "deno task producer",
  about:
    "Submits a random job (priority 0..10, runtime 3..15 s) to the bus, then waits and repeats.",
  sections: [{
    title: "Options (as the seed's producer)",
    rows: [
      [
        "-p, --period SECONDS",
        "seconds between jobs; with -g, the mean (default 5; 0 needs --count)",
      ],
      ["-g, --gauss", "wait a gaussian time, mean -p, standard deviation -s (at least 5 ms)"],
      ["-s, --sigma SECONDS", "standard deviation for -g (default 2)"],
      ["-h, --help", "show this help and exit"],
    ],
  }, {
    title: "Beyond the seed",
    rows: [
      wsUrlUsageRow("ws://127.0.0.1:8101"),
      ["--count N", "stop after N jobs (once the bus has answered them)"],
      [
        "--wait",
        `with --count: exit once all N jobs have finished, with a summary (wait: time
not running, from submission to outcome; run: time running)`,
      ],
      ["--priority LO-HI", "priority range, within 0..10 (default 0-10)"],
      ["--runtime LO-HI", "runtime range in whole seconds, LO >= 1 (default 3-15)"],
      ["--seed N", "seed of the random sequence (0..4294967295), to replay a run"],
      ["--name NAME", "the producer's name, prefix of its job ids (default producer-<pid>)"],
      ["--seed-protocol", "speak protocol 1 exactly like the seed: no ids, no feedback"],
      ["-d, --debug", "also log each connection attempt and error"],
      ...CREDENTIAL_USAGE_ROWS,
    ],
  }, {
    title: "Exit codes",
    rows: [
      ["0", "done, or stopped by Ctrl-C or SIGTERM; with --wait: every job ended well"],
      [
        String(EXIT_JOB_FAILED),
        "with --wait: some job failed, timed out, was cancelled, evicted or rejected",
      ],
      ["2", "bad command line"],
      [
        String(EXIT_UNFINISHED),
        "with --wait: stopped by Ctrl-C or SIGTERM before every job had ended",
      ],
    ],
  }],
  examples: [
    "deno task producer -- -g -s 2",
    "deno task producer -- --count 20 --wait --seed 42 -p 0.5 --priority 0-3",
  ],
});

/** The parsed command line. */
interface Config {
  periodS: number;
  gauss: boolean;
  sigmaS: number;
  urls: string[];
  count?: number | undefined;
  wait: boolean;
  priority: IntRange;
  runtimeS: IntRange;
  seed?: number | undefined;
  name: string;
  protocol: 1 | 2;
  debug: boolean;
  credentials: Credentials;
}

/**
 * Runs the producer CLI.
 *
 * @param args The command-line arguments (a leading `--` from `deno task` is dropped).
 * @param options See {@linkcode MainOptions}.
 * @returns The exit code: 0 (done, or stopped by a signal; with `--wait`, every job ended
 *   well), {@linkcode EXIT_JOB_FAILED} (`--wait`: some job did not succeed), 2 (bad flags),
 *   {@linkcode EXIT_UNFINISHED} (`--wait`: stopped by a signal with jobs unfinished).
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * const code = await main(["--help"], { stdout: () => {} });
 * console.log(code); // 0
 * ```
 */
export function main(args: string[], options: MainOptions = {}): Promise<number> {
  return runCli(
    { name: "producer", usage: USAGE, options: OPTIONS, configure, run },
    args,
    options,
  );
}

async function run(config: Config, io: CliIo): Promise<number> {
  using shutdown = new ShutdownSignal({ signal: io.signal });
  const stop = shutdown.signal;
  const { seed, priority, runtimeS, periodS, gauss, sigmaS } = config;
  const shape = { priority, runtimeS, periodS, gauss, sigmaS };
  const generator = new JobGenerator(seed === undefined ? shape : { ...shape, seed });
  const producer = new Producer(config.urls, {
    name: config.name,
    protocol: config.protocol,
    clock: io.clock,
    ...config.credentials,
  });
  const times = watch(producer, config, io);
  const pace = config.gauss
    ? `a gaussian wait of ${config.periodS} ± ${config.sigmaS} s`
    : `one job every ${config.periodS} s`;
  const count = config.count === undefined ? "" : `, ${plural(config.count, "job")}`;
  io.log(
    `producer ${producer.name} → ${config.urls.join(",")} (protocol ${config.protocol}), seed ` +
      `${generator.seed}, ${pace}${count}`,
  );
  producer.start();
  try {
    while (!stop.aborted && (config.count === undefined || producer.produced < config.count)) {
      const job = producer.submit(generator.nextJob());
      const last = producer.produced === config.count;
      const delayMs = last ? 0 : generator.nextDelayMs();
      const held = job.sends === 0 ? " (held until connected to the bus)" : "";
      const next = last ? "; that was the last one" : `; next in ${seconds(delayMs)}`;
      io.log(`${describe(job, config.protocol)} submitted${held}${next}`);
      if (!last) await sleep(delayMs, stop, { clock: io.clock });
    }
    if (!stop.aborted) {
      await untilAborted(config.wait ? producer.onSettled() : producer.onAnswered(), stop);
    }
  } finally {
    await producer.close();
  }
  const unfinished = producer.unfinished ? `, ${producer.unfinished} without an outcome` : "";
  const stopped = stop.aborted ? " (stopped)" : "";
  io.log(`produced ${plural(producer.produced, "job")}${stopped}${unfinished}`);
  if (!config.wait) return 0;
  const outcomes = producer.summary.outcomes;
  for (const line of formatSummary(outcomes, times)) io.log(line);
  if (producer.unfinished > 0) return EXIT_UNFINISHED;
  const notDone = Object.entries(outcomes).some(([outcome, n]) =>
    NOT_DONE.has(outcome as ProducerOutcome) && n > 0
  );
  return notDone ? EXIT_JOB_FAILED : 0;
}

/** Logs the connection's state changes; returns the times of the jobs, told by {@linkcode watchJobs}. */
function watch(producer: Producer, config: Config, io: CliIo): JobTimes {
  const client = producer.client;
  let waiting = false; // "waiting for the bus" was said during this outage
  let refusal = ""; // the refusal said last, not said again until the next open
  client.addEventListener("open", (event) => {
    waiting = false;
    refusal = "";
    io.log(`${event.reconnect ? "reconnected" : "connected"} to the bus at ${event.url}`);
  });
  client.addEventListener("close", (event) => {
    const at = client.urls.length > 1 ? ` at ${event.url}` : "";
    io.log(`lost the bus${at} (code ${event.code}${event.reason ? `, ${event.reason}` : ""})`);
  });
  client.addEventListener("reconnecting", (event) => {
    if (config.debug) {
      io.log(`reconnect attempt ${event.attempt} to ${event.url} in ${seconds(event.delayMs)}`);
    } else if (event.delayMs === 0) {
      io.log(`trying the next bus, at ${event.url}`);
      return; // a move to another bus: not waiting yet
    } else if (!waiting) {
      const everyS = DEFAULT_BACKOFF.maxMs / 1000;
      const at = client.urls.join(", ");
      io.log(`waiting for the bus at ${at} (retrying every ≤ ${everyS} s)`);
    }
    waiting = true;
  });
  client.addEventListener("error", (event) => {
    if (config.debug) io.log(`debug: ${event.error.message}`);
    else if (event.refused && event.error.message !== refusal) io.log(event.error.message);
    if (event.refused) refusal = event.error.message;
  });
  client.addEventListener("seedbus", (event) => {
    io.log(
      `the bus speaks only the seed's protocol (${event.reason}): sending its job requests; ` +
        `no answers or outcomes will come`,
    );
  });
  producer.addEventListener("buserror", ({ message }) => {
    const about = [message.op, message.id].filter((x) => typeof x === "string").join(" ");
    io.log(`bus error${about ? ` (${about})` : ""}: ${message.reason}`);
  });
  return watchJobs(producer, config, io);
}

/** Logs the feedback on each job, and times its waits and runs. */
function watchJobs(producer: Producer, config: Config, io: CliIo): JobTimes {
  const times = new JobTimes();
  const accepted = new Set<string>(); // accepted, not yet said (no "queued" or "started" yet)
  const idle = new Set<string>(); // accepted while the bus had no scheduler, not started yet
  // The bus says why a new job waits with nothing to run it ("no scheduler connected").
  const unserved = (job: Readonly<ProducedJob>): string => {
    const why = job.waiting;
    if (why === undefined) return "";
    idle.add(job.id);
    return `; ${why} (${plural(idle.size, "job")} of ours waiting for one)`;
  };
  producer.addEventListener("job", ({ change, job }) => {
    const now = io.clock.now();
    const on = job.scheduler && change !== "requeued" ? ` on ${job.scheduler}` : "";
    const why = job.reason ? `: ${job.reason}` : "";
    if (change === "started") idle.clear(); // a scheduler is there now
    if (job.outcome) {
      accepted.delete(job.id);
      idle.delete(job.id);
      times.finish(job.id, job.payload.priority, job.submittedAt, now);
    } else times.change(job.id, change, job.submittedAt, now);
    const log = (line: string): void =>
      io.log(line, {
        job: job.id,
        priority: job.payload.priority,
        state: change,
        scheduler: job.scheduler,
        reason: job.reason,
      });
    switch (change) {
      case "sent":
        if (config.debug) log(`debug: ${job.id} sent`);
        return;
      case "accepted": // said with the bus's "queued" that follows
        accepted.add(job.id);
        return;
      case "queued": // the bus's own (just accepted), or waiting at a scheduler
        if (!accepted.delete(job.id)) return log(`${job.id} queued${on}`);
        return log(`${job.id} accepted, queued in the bus${unserved(job)}`);
      case "resent":
        return log(`${job.id} re-sent after reconnecting (send #${job.sends})`);
      case "duplicate":
        return log(`${job.id} the bus had it already: ${job.state}${on}`);
      case "started":
        accepted.delete(job.id);
        return log(`${job.id} started${on} after ${seconds(times.waitedMs(job.id))} waiting`);
    }
    if (job.outcome && job.outcome !== "rejected" && job.outcome !== "sent") {
      const ran = job.lastStartedAt === undefined
        ? ""
        : `, ran ${seconds(now - job.lastStartedAt)}`;
      const total = seconds(now - job.submittedAt);
      return log(`${job.id} ${change}${on}${why} (${total} after submission${ran})`);
    }
    log(`${job.id} ${change}${on}${why}`);
  });
  return times;
}

/** The flags: the numeric ones are strings here and checked below. */
const OPTIONS = {
  period: { type: "string", short: "p", default: "5" },
  gauss: { type: "boolean", short: "g", default: false },
  sigma: { type: "string", short: "s", default: "2" },
  url: { type: "string", multiple: true, default: ["ws://127.0.0.1:8101"] as string[] },
  count: { type: "string" },
  wait: { type: "boolean", default: false },
  priority: { type: "string", default: "0-10" },
  runtime: { type: "string", default: "3-15" },
  seed: { type: "string" },
  name: { type: "string", default: `producer-${Deno.pid}` },
  "seed-protocol": { type: "boolean", default: false },
  debug: { type: "boolean", short: "d", default: false },
  ...CREDENTIAL_FLAGS,
} as const;

function configure({ values }: Flags<typeof OPTIONS>): Config {
  const count = values.count === undefined
    ? undefined
    : integerFlag("--count", values.count, { min: 1 });
  if (values.wait && count === undefined) throw new UsageError("--wait needs --count N");
  if (values.wait && values["seed-protocol"]) {
    throw new UsageError("--wait needs feedback, which --seed-protocol does not give");
  }
  if (!/^[\w.:@-]{1,100}$/.test(values.name)) {
    throw new UsageError(
      `--name must be 1..100 letters, digits or . _ - : @, got '${values.name}'`,
    );
  }
  const periodS = secondsFlag("-p/--period", values.period);
  if (periodS === 0 && !values.gauss && count === undefined) {
    throw new UsageError("-p 0 submits jobs without a pause, forever: add --count N, or a -p > 0");
  }
  const urls = wsUrlListFlag("--url", values.url);
  return {
    periodS,
    gauss: values.gauss,
    sigmaS: secondsFlag("-s/--sigma", values.sigma),
    urls,
    credentials: readCredentials(values, urls),
    count,
    wait: values.wait,
    priority: range("--priority", values.priority, MIN_PRIORITY, MAX_PRIORITY),
    runtimeS: range("--runtime", values.runtime, 1, Number.MAX_SAFE_INTEGER),
    seed: values.seed === undefined
      ? undefined
      : integerFlag("--seed", values.seed, { max: 2 ** 32 - 1 }),
    name: values.name,
    protocol: values["seed-protocol"] ? 1 : 2,
    debug: values.debug,
  };
}

function range(flag: string, text: string, min: number, max: number): IntRange {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text);
  const low = Number(match?.[1]);
  const high = Number(match?.[2] ?? match?.[1]);
  if (!match || low < min || high > max || low > high) {
    const bounds = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `within ${min}..${max}`;
    throw new UsageError(
      `${flag} must be LO-HI with LO <= HI (or N), integers ${bounds}, got '${text}'`,
    );
  }
  return [low, high];
}

/** Waits for `promise`, or until `signal` aborts. */
async function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  const { promise: aborted, resolve } = Promise.withResolvers<void>();
  const onAbort = (): void => resolve();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function describe(job: Readonly<ProducedJob>, protocol: 1 | 2): string {
  const what = `priority ${job.payload.priority}, runtime ${job.payload.runtime} s`;
  return protocol === 2 ? `${job.id} (${what})` : `job #${job.id.split("-").pop()} (${what})`;
}

/** The lines of the `--wait` summary. */
function formatSummary(
  outcomes: Partial<Record<ProducerOutcome, number>>,
  times: JobTimes,
): string[] {
  const said = Object.entries(outcomes).map(([k, v]) => `${k} ${v}`).join(", ");
  const lines = [`outcomes: ${said || "none yet"}`];
  for (const p of times.byPriority()) {
    const figures = p.started
      ? `mean wait ${seconds(p.meanWaitMs)}, mean run ${seconds(p.meanRunMs)}`
      : "no start seen";
    lines.push(`priority ${p.priority}: ${p.finished} finished, ${p.started} started, ${figures}`);
  }
  if (lines.length > 1) {
    lines.push("(wait: time not running, from submission to outcome; run: time running)");
  }
  return lines;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
