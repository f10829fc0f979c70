// deno-lint-ignore-file no-console
/**
 * `deno task producer`: submits random test jobs to the bus, like the seed's producer, and
 * prints the feedback the bus gives on them.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import { DEFAULT_BACKOFF } from "../bus/backoff.ts";
import { ShutdownSignal } from "../process/shutdown_signal.ts";
import { type IntRange, JobGenerator } from "./generator.ts";
import { type ProducedJob, Producer, type ProducerSummary } from "./producer.ts";

/** The usage text printed by `--help` and after a bad flag. */
export const USAGE: string = `Usage: deno task producer -- [options]

Submits a random job (priority 0..10, runtime 3..15 s) to the bus, then waits and repeats.

Options (as the seed's producer):
  -p, --period SECONDS   seconds between jobs; with -g, the mean (default 5; 0 needs --count)
  -g, --gauss            wait a gaussian time, mean -p, standard deviation -s (at least 5 ms)
  -s, --sigma SECONDS    standard deviation for -g (default 2)
  -h, --help             show this help and exit
Beyond the seed:
  --url URL              the bus (default ws://127.0.0.1:8101)
  --count N              stop after N jobs (once the bus has answered them)
  --wait                 with --count: exit once all N jobs have finished, with a summary
  --priority LO-HI       priority range, within 0..10 (default 0-10)
  --runtime LO-HI        runtime range in whole seconds, LO >= 1 (default 3-15)
  --seed N               seed of the random sequence (0..4294967295), to replay a run
  --name NAME            the producer's name, prefix of its job ids (default producer-<pid>)
  --seed-protocol        speak protocol 1 exactly like the seed: no ids, no feedback
  -d, --debug            also log each connection attempt and error

Examples:
  deno task producer -- -g -s 2
  deno task producer -- --count 20 --wait --seed 42 -p 0.5 --priority 0-3`;

/** Injection points for tests; the CLI uses the defaults. */
export interface MainOptions {
  /**
   * Stops the producer when aborted, as SIGINT / SIGTERM do.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Where log lines go.
   * @default {console.log}
   */
  stdout?: (line: string) => void;
  /**
   * Where errors and the usage go.
   * @default {console.error}
   */
  stderr?: (line: string) => void;
  /**
   * Where time comes from.
   * @default {systemClock}
   */
  clock?: Clock;
}

/** The parsed command line. */
interface Config {
  periodS: number;
  gauss: boolean;
  sigmaS: number;
  url: string;
  count?: number;
  wait: boolean;
  priority: IntRange;
  runtimeS: IntRange;
  seed?: number;
  name: string;
  protocol: 1 | 2;
  debug: boolean;
}

class UsageError extends Error {}

/**
 * Runs the producer CLI.
 *
 * @param args The command-line arguments (a leading `--` from `deno task` is dropped).
 * @param options See {@linkcode MainOptions}.
 * @returns The exit code: 0 (done, or stopped by a signal), 2 (bad flags).
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * const code = await main(["--help"], { stdout: () => {} });
 * console.log(code); // 0
 * ```
 */
export async function main(args: string[], options: MainOptions = {}): Promise<number> {
  const out = options.stdout ?? ((line: string) => console.log(line));
  const err = options.stderr ?? ((line: string) => console.error(line));
  const clock = options.clock ?? systemClock;
  let config: Config | "help";
  try {
    config = parseFlags(args[0] === "--" ? args.slice(1) : args);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof TypeError)) throw error;
    err(`producer: ${flagError(error.message)}`);
    err(USAGE);
    return 2;
  }
  if (config === "help") {
    out(USAGE);
    return 0;
  }
  using shutdown = new ShutdownSignal({ signal: options.signal });
  return await run(config, shutdown.signal, clock, out);
}

async function run(
  config: Config,
  stop: AbortSignal,
  clock: Clock,
  out: (line: string) => void,
): Promise<number> {
  const log = (line: string): void => out(`${timestamp(new Date(clock.now()))} ${line}`);
  const { seed, priority, runtimeS, periodS, gauss, sigmaS } = config;
  const generator = new JobGenerator({ seed, priority, runtimeS, periodS, gauss, sigmaS });
  const producer = new Producer(config.url, {
    name: config.name,
    protocol: config.protocol,
    clock,
  });
  watch(producer, config, log, clock);
  const pace = config.gauss
    ? `a gaussian wait of ${config.periodS} ± ${config.sigmaS} s`
    : `one job every ${config.periodS} s`;
  log(
    `producer ${producer.name} → ${config.url} (protocol ${config.protocol}), seed ` +
      `${generator.seed}, ${pace}${config.count === undefined ? "" : `, ${config.count} jobs`}`,
  );
  producer.start();
  try {
    while (!stop.aborted && (config.count === undefined || producer.produced < config.count)) {
      const job = producer.submit(generator.nextJob());
      const last = producer.produced === config.count;
      const delayMs = last ? 0 : generator.nextDelayMs();
      const held = job.sends === 0 ? " (held until connected to the bus)" : "";
      const next = last ? "; that was the last one" : `; next in ${seconds(delayMs)}`;
      log(`${describe(job, config.protocol)} submitted${held}${next}`);
      if (!last) await sleep(delayMs, stop, clock);
    }
    if (!stop.aborted) {
      await untilAborted(config.wait ? producer.onSettled() : producer.onAnswered(), stop);
    }
  } finally {
    await producer.close();
  }
  const unfinished = producer.unfinished ? `, ${producer.unfinished} without an outcome` : "";
  log(`produced ${producer.produced} jobs${stop.aborted ? " (stopped)" : ""}${unfinished}`);
  if (config.wait) { for (const line of formatSummary(producer.summary)) log(line); }
  return 0;
}

/** Logs the connection's state changes and the feedback on each job. */
function watch(
  producer: Producer,
  config: Config,
  log: (line: string) => void,
  clock: Clock,
): void {
  const client = producer.client;
  let waiting = false; // "waiting for the bus" was said during this outage
  const accepted = new Set<string>(); // accepted, not yet said (no "queued" or "started" yet)
  client.addEventListener("open", (event) => {
    waiting = false;
    log(`${event.reconnect ? "reconnected" : "connected"} to the bus at ${client.url}`);
  });
  client.addEventListener("close", (event) => {
    log(`lost the bus (code ${event.code}${event.reason ? `, ${event.reason}` : ""})`);
  });
  client.addEventListener("reconnecting", (event) => {
    if (config.debug) {
      log(`reconnect attempt ${event.attempt} in ${seconds(event.delayMs)}`);
    } else if (!waiting) {
      log(
        `waiting for the bus at ${client.url} (retrying every ≤ ${DEFAULT_BACKOFF.maxMs / 1000} s)`,
      );
    }
    waiting = true;
  });
  client.addEventListener("error", (event) => {
    if (config.debug) log(`debug: ${event.error.message}`);
  });
  producer.addEventListener("buserror", ({ message }) => {
    const about = [message.op, message.id].filter((x) => typeof x === "string").join(" ");
    log(`bus error${about ? ` (${about})` : ""}: ${message.reason}`);
  });
  producer.addEventListener("job", ({ change, job }) => {
    const now = clock.now();
    const on = job.scheduler && change !== "requeued" ? ` on ${job.scheduler}` : "";
    const why = job.reason ? `: ${job.reason}` : "";
    if (job.outcome) accepted.delete(job.id);
    switch (change) {
      case "sent":
        if (config.debug) log(`debug: ${job.id} sent`);
        return;
      case "accepted": // said with the bus's "queued" that follows
        accepted.add(job.id);
        return;
      case "queued": // the bus's own (just accepted), or waiting at a scheduler
        if (accepted.delete(job.id)) return log(`${job.id} accepted, queued in the bus`);
        return log(`${job.id} queued${on}`);
      case "resent":
        return log(`${job.id} re-sent after reconnecting (send #${job.sends})`);
      case "duplicate":
        return log(`${job.id} the bus had it already: ${job.state}${on}`);
      case "started":
        accepted.delete(job.id);
        return log(`${job.id} started${on} after ${seconds(now - job.submittedAt)} waiting`);
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
}

/** The flags: the numeric ones are strings here and checked below. */
const OPTIONS = {
  period: { type: "string", short: "p", default: "5" },
  gauss: { type: "boolean", short: "g", default: false },
  sigma: { type: "string", short: "s", default: "2" },
  help: { type: "boolean", short: "h", default: false },
  url: { type: "string", default: "ws://127.0.0.1:8101" },
  count: { type: "string" },
  wait: { type: "boolean", default: false },
  priority: { type: "string", default: "0-10" },
  runtime: { type: "string", default: "3-15" },
  seed: { type: "string" },
  name: { type: "string", default: `producer-${Deno.pid}` },
  "seed-protocol": { type: "boolean", default: false },
  debug: { type: "boolean", short: "d", default: false },
} as const;

/**
 * `parseArgs` calls `-p -1` ambiguous (a value that looks like a flag): join a negative number to
 * its flag (`--period=-1`) so that the flag's own check says what is wrong with it.
 */
function joinNegativeNumbers(args: string[]): string[] {
  const joined: string[] = [];
  for (const arg of args) {
    const flag = joined.at(-1) ?? "";
    const name = Object.entries(OPTIONS).find(([long, option]) =>
      option.type === "string" &&
      (flag === `--${long}` || ("short" in option && flag === `-${option.short}`))
    )?.[0];
    if (name && /^-\.?\d/.test(arg) && !joined.includes("--")) {
      joined[joined.length - 1] = `--${name}=${arg}`;
    } else joined.push(arg);
  }
  return joined;
}

/** A flag error's first line, in our words where `parseArgs` has its own. */
function flagError(message: string): string {
  const unknown = /^Unknown option '([^']*)'/.exec(message);
  if (unknown) return `unknown option '${unknown[1]}'`;
  const ambiguous = /^Option '([^']*)' argument is ambiguous/.exec(message);
  if (ambiguous) return `option '${ambiguous[1]}' needs a value`;
  return message.split("\n")[0];
}

function parseFlags(args: string[]): Config | "help" {
  const { values, positionals } = parseArgs({
    args: joinNegativeNumbers(args),
    strict: true,
    allowPositionals: true,
    options: OPTIONS,
  });
  if (values.help) return "help";
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const count = values.count === undefined
    ? undefined
    : integer("--count", values.count, 1, Number.MAX_SAFE_INTEGER);
  if (values.wait && count === undefined) throw new UsageError("--wait needs --count N");
  if (values.wait && values["seed-protocol"]) {
    throw new UsageError("--wait needs feedback, which --seed-protocol does not give");
  }
  let url: URL | undefined;
  try {
    url = new URL(values.url);
  } catch { /* reported below */ }
  if (url?.protocol !== "ws:" && url?.protocol !== "wss:") {
    throw new UsageError(`--url must be a ws:// or wss:// URL, got '${values.url}'`);
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
  return {
    periodS,
    gauss: values.gauss,
    sigmaS: secondsFlag("-s/--sigma", values.sigma),
    url: values.url,
    count,
    wait: values.wait,
    priority: range("--priority", values.priority, 0, 10),
    runtimeS: range("--runtime", values.runtime, 1, Number.MAX_SAFE_INTEGER),
    seed: values.seed === undefined ? undefined : integer("--seed", values.seed, 0, 2 ** 32 - 1),
    name: values.name,
    protocol: values["seed-protocol"] ? 1 : 2,
    debug: values.debug,
  };
}

function secondsFlag(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0) {
    throw new UsageError(`${flag} must be a number of seconds >= 0, got '${text}'`);
  }
  return value;
}

function integer(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new UsageError(`${flag} must be an integer ${min}..${max}, got '${text}'`);
  }
  return value;
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

/** Waits `ms` on the clock, or less if `signal` aborts; leaves no timer or listener behind. */
function sleep(ms: number, signal: AbortSignal, clock: Clock): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clock.clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer: TimerId = clock.setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
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
function formatSummary(summary: ProducerSummary): string[] {
  const outcomes = Object.entries(summary.outcomes).map(([k, v]) => `${k} ${v}`).join(", ");
  const lines = [`outcomes: ${outcomes || "none yet"}`];
  for (const p of summary.byPriority) {
    const times = p.started
      ? `mean wait ${seconds(p.meanWaitMs)}, mean run ${seconds(p.meanRunMs)}`
      : "no start seen";
    lines.push(`priority ${p.priority}: ${p.finished} finished, ${p.started} started, ${times}`);
  }
  return lines;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Local time `HH:MM:SS.mmm`, the stamp of every CLI's lines (bus, scheduler, producer). */
function timestamp(d: Date): string {
  return `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
