// deno-lint-ignore-file no-console
/**
 * `deno task scheduler`: the seed's `test_scheduler`. Registers on the bus as a (protocol 2)
 * scheduler and runs every job it is given as a sleeper process through a {@linkcode Runner},
 * printing one line per job event.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ShutdownSignal } from "../process/mod.ts";
import type { JobPayload } from "../bus/protocol.ts";
import { SchedulerClient } from "../bus/scheduler_client.ts";
import { JOB_STATES, type JobEvent, type Launcher } from "./job.ts";
import { sleeperLauncher } from "./sleeper_launcher.ts";
import { procLauncher } from "./proc_launcher.ts";
import { DEFAULT_BACKOFF } from "../bus/backoff.ts";

/** The usage text printed by `--help` and after a bad flag. */
export const USAGE: string = `Usage: deno task scheduler -- [options]

Connects to the bus as a scheduler and runs the jobs it is given (sleepers of the job's
runtime), by priority (0 = most urgent, 10 = least), on a fixed number of slots.

Options (as the seed's test_scheduler):
  -s SIZE              maximum number of concurrent jobs (default 5)
  -t TIMEOUT           timeout of the jobs, seconds (default 10)
  -h, --help           show this help and exit
Beyond the seed:
  -d, --debug          also log connection details and every message from the bus
  --url URL            the bus (default ws://127.0.0.1:8101)
  --name NAME          the scheduler's name on the bus (default scheduler-<pid>)
  --evict MODE         what happens to a job evicted by a more urgent one (default requeue):
                         requeue  terminated, and back in the bus's queue to run again later
                         kill     terminated and reported evicted (the seed's behavior)
                         suspend  paused (SIGSTOP) and resumed when a slot frees
  --min-run SECONDS    running time before a job may be evicted (default 0)
  --exec PATH          run each job as \`PATH <runtime>\` (e.g. /bin/sleep) instead of the Deno
                       sleeper: ~2 ms to start instead of ~60 ms, for many short jobs

Ctrl-C or SIGTERM terminates the running jobs, hands them back to the bus and exits 0.

Examples:
  deno task scheduler -- -s 5 -t 10
  deno task scheduler -- -s 2 -t 30 --evict suspend --name node-a
  deno task scheduler -- -s 8 --exec /bin/sleep`;

/** Injection points for tests; the CLI uses the defaults. */
export interface MainOptions {
  /**
   * Stops the scheduler when aborted, as SIGINT / SIGTERM do.
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
}

/** The parsed command line. */
interface Config {
  slots: number;
  timeoutS: number;
  debug: boolean;
  url: string;
  name: string;
  evict: "requeue" | "kill" | "suspend";
  minRunS: number;
  exec?: string;
}

class UsageError extends Error {}

function number(flag: string, text: string, check: (n: number) => boolean, what: string): number {
  const value = Number(text);
  if (text.trim() === "" || !check(value)) {
    throw new UsageError(`${flag} must be ${what}, got '${text}'`);
  }
  return value;
}

function parseFlags(args: string[]): Config | "help" {
  const { values } = parseArgs({
    args,
    options: {
      s: { type: "string" },
      t: { type: "string" },
      debug: { type: "boolean", short: "d" },
      help: { type: "boolean", short: "h" },
      url: { type: "string" },
      name: { type: "string" },
      evict: { type: "string" },
      "min-run": { type: "string" },
      exec: { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  const evict = values.evict ?? "requeue";
  if (evict !== "requeue" && evict !== "kill" && evict !== "suspend") {
    throw new UsageError(`--evict must be requeue, kill or suspend, got '${evict}'`);
  }
  const url = values.url ?? "ws://127.0.0.1:8101";
  if (!/^wss?:\/\/./.test(url)) throw new UsageError(`--url must be a ws:// URL, got '${url}'`);
  if (values.exec === "") throw new UsageError("--exec must be a path, got ''");
  return {
    slots: values.s === undefined
      ? 5
      : number("-s", values.s, (n) => Number.isInteger(n) && n >= 1, "a positive integer"),
    timeoutS: values.t === undefined
      ? 10
      : number("-t", values.t, (n) => Number.isFinite(n) && n > 0, "a positive number"),
    debug: values.debug ?? false,
    url,
    name: values.name ?? `scheduler-${Deno.pid}`,
    evict,
    minRunS: values["min-run"] === undefined ? 0 : number(
      "--min-run",
      values["min-run"],
      (n) => Number.isFinite(n) && n >= 0,
      "a number >= 0",
    ),
    exec: values.exec,
  };
}

/** A launcher that runs `path <runtime>` for each job (`--exec`). */
function execLauncher(path: string): Launcher<JobPayload> {
  const launch = procLauncher({ output: "inherit" });
  return ({ id, priority, attempts, payload }) =>
    launch({ id, priority, attempts, payload: { command: path, args: [String(payload.runtime)] } });
}

/** What each event is, in words. */
const WHAT: Record<string, string> = {
  queued: "waits (all slots busy)",
  started: "started",
  evicted: "evicted",
  requeued: "requeued",
  suspended: "suspended",
  resumed: "resumed",
  succeeded: "succeeded",
  failed: "failed",
  timed_out: "timed out",
  cancelled: "cancelled",
};

/** Local time `HH:MM:SS.mmm`, the stamp of every CLI's lines (bus, scheduler, producer). */
function stamp(d = new Date()): string {
  return `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

function describe(event: JobEvent<JobPayload>, config: Config, stopping: boolean): string {
  const job = event.job;
  let what = WHAT[event.state] ?? event.state;
  // Jobs terminated by our own shutdown: the runner calls them cancelled ("runner closed"), but
  // the bus runs them again elsewhere.
  const shutdown = stopping && event.state === "cancelled";
  if (shutdown) what = "terminated (scheduler stopping)";
  if (event.state === "started") {
    // Attempts here only (a job the bus requeued from elsewhere starts here as attempt 1).
    const attempt = job.attempts > 1 ? `, attempt ${job.attempts} here` : "";
    what += ` (runtime ${job.payload.runtime} s${attempt})`;
  }
  if (event.state === "evicted" && config.evict === "requeue") what += ", handed back to the bus";
  // A timeout's reason speaks ms: said below in -t's seconds.
  const quiet = shutdown || event.state === "started" || event.state === "timed_out";
  if (job.reason !== undefined && !quiet) what += `: ${job.reason}`;
  if (["succeeded", "failed", "timed_out"].includes(event.state)) {
    what += ` after ${(job.runMs / 1000).toFixed(1)} s`;
  }
  if (event.state === "timed_out") what += ` (timeout ${job.timeoutMs / 1000} s)`;
  return `${stamp()} job ${job.id} p${job.priority} ${what} ` +
    `[slots ${event.running}/${config.slots}, waiting ${event.waiting}]`;
}

/**
 * Runs the scheduler CLI.
 *
 * @param args The command-line arguments (a leading `--` from `deno task` is dropped).
 * @param options See {@linkcode MainOptions}.
 * @returns The exit code: 0 (stopped by a signal), 2 (bad flags).
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * console.log(await main(["--help"], { stdout: () => {} })); // 0
 * ```
 */
export async function main(args: string[], options: MainOptions = {}): Promise<number> {
  const out = options.stdout ?? ((line: string) => console.log(line));
  const err = options.stderr ?? ((line: string) => console.error(line));
  let config: Config | "help";
  try {
    config = parseFlags(args[0] === "--" ? args.slice(1) : args);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof TypeError)) throw error;
    err(`scheduler: ${error.message.split("\n")[0]}`);
    err(USAGE);
    return 2;
  }
  if (config === "help") {
    out(USAGE);
    return 0;
  }

  const scheduler = new SchedulerClient(config.url, {
    name: config.name,
    slots: config.slots,
    evict: config.evict,
    timeoutMs: config.timeoutS * 1000,
    minRunMs: config.minRunS * 1000,
    launch: config.exec === undefined
      ? sleeperLauncher({ output: "inherit" })
      : execLauncher(config.exec),
  });
  const runner = scheduler.runner;
  const log = (text: string): void => out(`${stamp()} ${text}`);
  let stopping = false;
  for (const state of JOB_STATES) {
    runner.addEventListener(state, (event) => {
      if (event.startsAtOnce && !config.debug) return; // say only "started"
      out(describe(event, config, stopping));
    });
  }
  const bus = scheduler.bus;
  bus.addEventListener("open", (event) => {
    log(`${event.reconnect ? "reconnected" : "connected"} to ${config.url} as ${config.name}`);
  });
  bus.addEventListener("registered", () => {
    log(`registered: ${config.slots} slots, timeout ${config.timeoutS} s, evict ${config.evict}`);
  });
  bus.addEventListener("close", (event) => {
    log(`lost the bus (code ${event.code}); running jobs keep running; reconnecting`);
  });
  bus.addEventListener("reconnecting", (event) => {
    if (config.debug) {
      log(`bus not reachable; retry ${event.attempt} in ${Math.round(event.delayMs)} ms`);
    } else if (event.attempt === 1) {
      const everyS = DEFAULT_BACKOFF.maxMs / 1000;
      log(`bus not reachable at ${config.url}; retrying every ≤ ${everyS} s until it is`);
    }
  });
  bus.addEventListener("error", (event) => {
    if (config.debug) log(`bus error: ${event.error.message}`);
  });
  bus.addEventListener("message", (event) => {
    const message = event.message;
    if (config.debug) log(`bus says ${JSON.stringify(message)}`);
    else if (message.cmd === "error") log(`bus error: ${String(message.reason)}`);
    else if (message.cmd === "cancel") log(`bus cancels job ${message.id}: ${message.reason}`);
  });

  // We drain on SIGINT/SIGTERM ourselves.
  using shutdown = new ShutdownSignal({ signal: options.signal });
  log(`scheduler ${config.name}: connecting to ${config.url}`);
  scheduler.start();
  await shutdown.wait();
  const busy = runner.running + runner.waiting;
  stopping = true;
  log(busy ? `stopping: terminating ${busy} job(s); the bus requeues them` : "stopping");
  await scheduler.close();
  const counts = Object.entries(runner.counts).filter(([, n]) => n > 0)
    .map(([state, n]) => `${state} ${n}`).join(", ");
  log(`stopped (${counts || "no jobs"})`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
