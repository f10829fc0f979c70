/**
 * `deno task scheduler`: the seed's `test_scheduler`. Registers on the bus as a (protocol 2)
 * scheduler and runs every job it is given through a `Runner` — the seed's sleeper jobs and,
 * when allowed (`--allow-command`), command jobs — printing one line per job event.
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
import { ShutdownSignal } from "../process/mod.ts";
import type { JobPayload } from "../bus/protocol.ts";
import { SchedulerClient } from "../bus/scheduler_client.ts";
import { OutcomeJournalError } from "../bus/outcome_journal.ts";
import { GroupReaper } from "../process/group_reaper.ts";
import { commandLauncher } from "./command_launcher.ts";
import { validateAllowList, validateLabels } from "./command_spec.ts";
import { findUser, type UserAccount } from "./user_account.ts";
import {
  type FinalState,
  JOB_STATES,
  type JobEvent,
  type JobState,
  type Launcher,
  MAX_PRIORITY,
  MIN_PRIORITY,
} from "./job.ts";
import { jobLauncher } from "./job_launcher.ts";
import { sleeperLauncher, type SleeperPayload } from "./sleeper_launcher.ts";
import { procLauncher } from "./proc_launcher.ts";
import { DEFAULT_BACKOFF } from "../bus/backoff.ts";

const PRIORITIES = `${MIN_PRIORITY} = most urgent, ${MAX_PRIORITY} = least`;

/** The usage text printed by `--help` and after a bad flag. */
export const USAGE: string = formatUsage({
  command: "deno task scheduler",
  about: `Connects to the bus as a scheduler and runs the jobs it is given (sleepers of the job's
runtime and, with --allow-command, command jobs), by priority (${PRIORITIES}),
on a fixed number of slots.`,
  sections: [{
    title: "Options (as the seed's test_scheduler)",
    rows: [
      ["-s SIZE", "maximum number of concurrent jobs (default 5)"],
      ["-t TIMEOUT", "timeout of the jobs, seconds > 0 (default 10)"],
      ["-h, --help", "show this help and exit"],
    ],
  }, {
    title: "Beyond the seed",
    rows: [
      ["-d, --debug", "also log connection details and every message from the bus"],
      wsUrlUsageRow("ws://127.0.0.1:8101"),
      ...CREDENTIAL_USAGE_ROWS,
      [
        "--name NAME",
        "the scheduler's name on the bus, one per scheduler (default scheduler-<pid>)",
      ],
      [
        "--evict MODE",
        `what happens to a job evicted by a more urgent one (default requeue):
  requeue  terminated, and back in the bus's queue to run again later
  kill     terminated and reported evicted (the seed's behavior)
  suspend  paused (SIGSTOP) and resumed when a slot frees`,
      ],
      ["--min-run SECONDS", "running time before a job may be evicted (default 0)"],
      [
        "--state-dir DIR",
        `keep the outcomes the bus has not stored yet in DIR (created if needed),
so that a restart under the same --name reports them instead of the jobs
running again; one scheduler per DIR`,
      ],
      [
        "--exec PATH",
        `run each job as \`PATH <runtime>\` (e.g. /bin/sleep) instead of the Deno
sleeper: ~2 ms to start instead of ~60 ms, for many short jobs; PATH is
one executable file, without arguments`,
      ],
    ],
  }, {
    title: "Command jobs (none unless --allow-command)",
    rows: [
      [
        "--allow-command CMD",
        `run command jobs whose command[0] is CMD: a name looked up on PATH
(ffmpeg), an absolute path (/usr/bin/python3), or '*' for any; repeatable`,
      ],
      ["--label K=V", "a label jobs may require (gpu=a100); repeatable"],
      ["--output-tail BYTES", "bytes of each output stream kept in a job's result (default 16384)"],
      ["--output-dir DIR", "also write each job's whole output to DIR/<job id>.out and .err"],
      [
        "--clear-env",
        `give jobs only PATH, HOME and LANG of the scheduler's environment (plus
their own env); without it they get all of it but SCHED_TOKEN`,
      ],
      ["--user NAME", "run command jobs as this user (the scheduler must run as root)"],
    ],
  }, {
    title: "Exit codes",
    rows: [
      ["0", "stopped by Ctrl-C or SIGTERM: running jobs terminated, handed back to the bus"],
      ["2", "bad command line, or a --state-dir of another scheduler or in use"],
    ],
  }],
  examples: [
    "deno task scheduler -- -s 5 -t 10",
    "deno task scheduler -- -s 2 -t 30 --evict suspend --name node-a --state-dir /var/lib/sched-a",
    "deno task scheduler -- -s 8 --exec /bin/sleep",
    "deno task scheduler -- -s 4 --allow-command ffmpeg --allow-command python3 --label gpu=a100",
    "deno task scheduler -- -s 8 --allow-command '*' --output-dir /var/tmp/jobs --clear-env",
  ],
});

const OPTIONS = {
  s: { type: "string", default: "5" },
  t: { type: "string", default: "10" },
  debug: { type: "boolean", short: "d", default: false },
  url: { type: "string", multiple: true, default: ["ws://127.0.0.1:8101"] as string[] },
  name: { type: "string" },
  evict: { type: "string", default: "requeue" },
  "min-run": { type: "string", default: "0" },
  exec: { type: "string" },
  "allow-command": { type: "string", multiple: true },
  label: { type: "string", multiple: true },
  "output-tail": { type: "string", default: "16384" },
  "output-dir": { type: "string" },
  "clear-env": { type: "boolean", default: false },
  user: { type: "string" },
  "state-dir": { type: "string" },
  ...CREDENTIAL_FLAGS,
} as const;

/** The largest `--output-tail`: 64 MiB. */
const MAX_OUTPUT_TAIL = 64 * 1024 * 1024;

/** The parsed command line. */
interface Config {
  slots: number;
  timeoutS: number;
  debug: boolean;
  urls: string[];
  name: string;
  evict: "requeue" | "kill" | "suspend";
  minRunS: number;
  exec?: string | undefined;
  commands: string[];
  labels: Record<string, string>;
  outputTailBytes: number;
  outputDir?: string | undefined;
  clearEnv: boolean;
  user?: UserAccount | undefined;
  stateDir?: string | undefined;
  credentials: Credentials;
}

function configure({ values }: Flags<typeof OPTIONS>): Config {
  const evict = values.evict;
  if (evict !== "requeue" && evict !== "kill" && evict !== "suspend") {
    throw new UsageError(`--evict must be requeue, kill or suspend, got '${evict}'`);
  }
  const urls = wsUrlListFlag("--url", values.url);
  return {
    slots: integerFlag("-s", values.s, { min: 1 }),
    timeoutS: secondsFlag("-t", values.t, { exclusive: true }),
    debug: values.debug,
    urls,
    credentials: readCredentials(values, urls),
    name: values.name ?? `scheduler-${Deno.pid}`,
    evict,
    minRunS: secondsFlag("--min-run", values["min-run"]),
    exec: values.exec === undefined ? undefined : executable(values.exec),
    stateDir: stateDirFlag(values["state-dir"]),
    ...commandJobs(values),
  };
}

/** `--state-dir`: a non-empty path (the directory is checked when the scheduler opens it). */
function stateDirFlag(dir: string | undefined): string | undefined {
  if (dir !== undefined && dir.trim() === "") throw new UsageError("--state-dir must not be empty");
  return dir;
}

/** The command-job flags, checked. */
function commandJobs(
  values: Flags<typeof OPTIONS>["values"],
): Pick<Config, "commands" | "labels" | "outputTailBytes" | "outputDir" | "clearEnv" | "user"> {
  const commands = values["allow-command"] ?? [];
  for (const entry of commands) {
    if (!validateAllowList([entry]).ok) {
      throw new UsageError(
        `--allow-command takes a name without '/', an absolute path or '*', got '${entry}'`,
      );
    }
  }
  if (commands.length > 0 && Deno.permissions.querySync({ name: "env" }).state !== "granted") {
    throw new UsageError(
      "command jobs need --allow-env (the scheduler passes its environment on without its credentials)",
    );
  }
  return {
    commands,
    labels: labelFlags(values.label ?? []),
    outputTailBytes: integerFlag("--output-tail", values["output-tail"], { max: MAX_OUTPUT_TAIL }),
    outputDir: values["output-dir"] === undefined ? undefined : outputDir(values["output-dir"]),
    clearEnv: values["clear-env"],
    user: values.user === undefined ? undefined : userFlag(values.user),
  };
}

/** `--label K=V`, repeatable, into an object; checked as the bus checks labels. */
function labelFlags(texts: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const text of texts) {
    const at = text.indexOf("=");
    if (at <= 0) throw new UsageError(`--label must be NAME=VALUE, got '${text}'`);
    const name = text.slice(0, at);
    if (Object.hasOwn(labels, name)) throw new UsageError(`--label ${name} given twice`);
    labels[name] = text.slice(at + 1);
  }
  const checked = validateLabels("--label", labels);
  if (!checked.ok) throw new UsageError(checked.reason);
  return labels;
}

/** `--output-dir`: an existing directory this process can write in. */
function outputDir(dir: string): string {
  const refuse = (why: string): never => {
    throw new UsageError(`--output-dir must be a writable directory, got '${dir}' (${why})`);
  };
  try {
    if (!Deno.statSync(dir).isDirectory) refuse("not a directory");
    Deno.removeSync(Deno.makeTempFileSync({ dir, prefix: ".probe-" }));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    if (error instanceof Deno.errors.NotFound) refuse("no such directory");
    refuse(error instanceof Error ? error.message : String(error));
  }
  return dir;
}

/** `--user NAME`: only for a scheduler running as root; the account from /etc/passwd. */
function userFlag(name: string): UserAccount {
  if (!isRoot()) throw new UsageError(`--user needs the scheduler to run as root`);
  let passwd: string;
  try {
    passwd = Deno.readTextFileSync("/etc/passwd");
  } catch (error) {
    throw new UsageError(`--user: cannot read /etc/passwd (${(error as Error).message})`);
  }
  const user = findUser(name, passwd);
  if (user === undefined) throw new UsageError(`--user: no such user '${name}'`);
  return user;
}

/** Whether this process runs as root (without --allow-sys: from /proc/self/status). */
function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    try {
      return /^Uid:\s+0\s/m.test(Deno.readTextFileSync("/proc/self/status"));
    } catch {
      return false;
    }
  }
}

/**
 * Checks `--exec`: one executable file (a bare name is looked up on PATH when PATH is readable).
 * Without the permission to look (no --allow-read), the value is taken as it is.
 */
function executable(value: string): string {
  const refuse = (why: string): never => {
    throw new UsageError(`--exec must be an executable file, got '${value}' (${why})`);
  };
  if (value.trim() === "") refuse("empty");
  let path: string | undefined = value;
  if (!value.includes("/")) {
    const env = Deno.permissions.querySync({ name: "env", variable: "PATH" });
    if (env.state !== "granted") return value; // Deno looks it up on PATH when it spawns
    path = (Deno.env.get("PATH") ?? "").split(":").filter(Boolean).map((dir) => `${dir}/${value}`)
      .find((candidate) => isFile(candidate));
    if (path === undefined) refuse("not found on PATH");
  }
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path!);
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied) return value;
    if (/\s/.test(value)) {
      throw new UsageError(`--exec takes one executable path, no arguments, got '${value}'`);
    }
    return refuse("no such file");
  }
  if (!info.isFile) refuse("not a file");
  if (info.mode !== null && (info.mode & 0o111) === 0) refuse("not executable");
  return value;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** A launcher that runs `path <runtime>` for each sleeper job (`--exec`). */
function execLauncher(path: string): Launcher<SleeperPayload> {
  const launch = procLauncher({ output: "inherit" });
  return ({ id, priority, attempts, payload }) =>
    launch({ id, priority, attempts, payload: { command: path, args: [String(payload.runtime)] } });
}

/** What each event is, in words. */
const WHAT: Readonly<Record<JobState, string>> = {
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

/** The final states after which a job's line says how long it ran. */
const RAN: ReadonlySet<JobState> = new Set<FinalState>(["succeeded", "failed", "timed_out"]);

/** What a job runs, in a few words: `runtime 2 s`, or its name or command line. */
function jobWhat(payload: JobPayload): string {
  if (!("command" in payload) || !Array.isArray(payload.command)) {
    return `runtime ${payload.runtime} s`;
  }
  const line = payload.command.map((arg) => /^[\w./:=@%+-]+$/.test(arg) ? arg : JSON.stringify(arg))
    .join(" ");
  const text = typeof payload.name === "string" ? payload.name : line;
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

/** The text of a job event, after the stamp. */
function describe(event: JobEvent<JobPayload>, config: Config, stopping: boolean): string {
  const job = event.job;
  let what = WHAT[event.state];
  // Jobs terminated by our own shutdown: the runner calls them cancelled ("runner closed"), but
  // the bus runs them again elsewhere.
  const shutdown = stopping && event.state === "cancelled";
  if (shutdown) what = "terminated (scheduler stopping)";
  if (event.state === "started") {
    // Attempts here only (a job the bus requeued from elsewhere starts here as attempt 1).
    const attempt = job.attempts > 1 ? `, attempt ${job.attempts} here` : "";
    what += ` (${jobWhat(job.payload)}${attempt})`;
  }
  if (event.state === "evicted" && config.evict === "requeue") what += ", handed back to the bus";
  // A timeout's reason speaks ms: said below in -t's seconds.
  const quiet = shutdown || event.state === "started" || event.state === "timed_out";
  if (job.reason !== undefined && !quiet) what += `: ${job.reason}`;
  if (RAN.has(event.state)) {
    what += ` after ${(job.runMs / 1000).toFixed(1)} s`;
  }
  if (event.state === "timed_out") what += ` (timeout ${job.timeoutMs / 1000} s)`;
  return `job ${job.id} p${job.priority} ${what} ` +
    `[slots ${event.running}/${config.slots}, waiting ${event.waiting}]`;
}

/**
 * Runs the scheduler CLI.
 *
 * @param args The command-line arguments (a leading `--` from `deno task` is dropped).
 * @param options See {@linkcode MainOptions}.
 * @returns The exit code: 0 (stopped by a signal, or `--help`), 2 (bad flags).
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * console.log(await main(["--help"], { stdout: () => {} })); // 0
 * ```
 */
export function main(args: string[], options: MainOptions = {}): Promise<number> {
  return runCli(
    { name: "scheduler", usage: USAGE, options: OPTIONS, configure, run },
    args,
    options,
  );
}

/**
 * The scheduler of the command line.
 *
 * @throws {OutcomeJournalError} If `--state-dir` is another scheduler's or in use.
 */
function createScheduler(config: Config, io: CliIo, reaper: GroupReaper): SchedulerClient {
  const scheduler: SchedulerClient = new SchedulerClient(config.urls, {
    name: config.name,
    slots: config.slots,
    evict: config.evict,
    timeoutMs: config.timeoutS * 1000,
    minRunMs: config.minRunS * 1000,
    clock: io.clock,
    labels: config.labels,
    commands: config.commands,
    ...config.credentials,
    launch: jobLauncher({
      sleeper: config.exec === undefined
        ? sleeperLauncher({ output: "inherit" })
        : execLauncher(config.exec),
      command: config.commands.length === 0 ? undefined : commandLauncher({
        clearEnv: config.clearEnv,
        user: config.user,
        outputTailBytes: config.outputTailBytes,
        outputDir: config.outputDir,
        reaper,
        onOutput: (id, stream, chunk) => scheduler.output(id, stream, chunk),
      }),
    }),
    stateDir: config.stateDir,
    onNotice: (message) => io.warn(message),
  });
  if (scheduler.unacknowledged.length > 0) {
    io.log(
      `state dir ${config.stateDir}: ${
        plural(scheduler.unacknowledged.length, "outcome")
      } not stored by the bus yet; reporting them once registered`,
    );
  }
  return scheduler;
}

async function run(config: Config, io: CliIo): Promise<number> {
  // One reaper per scheduler: command jobs' process groups die with it, even by SIGKILL.
  await using reaper = new GroupReaper();
  let scheduler: SchedulerClient;
  try {
    scheduler = createScheduler(config, io, reaper);
  } catch (error) {
    if (!(error instanceof OutcomeJournalError)) throw error;
    io.err(`scheduler: ${error.message}`);
    return 2;
  }
  if (config.commands.length > 0) reaper.start();
  const runner = scheduler.runner;
  let stopping = false;
  let terminated = 0; // jobs terminated by our own stop (the runner counts them cancelled)
  for (const state of JOB_STATES) {
    runner.addEventListener(state, (event) => {
      if (event.startsAtOnce && !config.debug) return; // say only "started"
      if (stopping && event.state === "cancelled") terminated++;
      const { id: job, priority } = event.job;
      io.log(describe(event, config, stopping), { job, priority, state: event.state });
    });
  }
  watchBus(scheduler, config, io);

  // We drain on SIGINT/SIGTERM ourselves.
  using shutdown = new ShutdownSignal({ signal: io.signal });
  io.log(`scheduler ${config.name}: connecting to ${config.urls.join(", ")}`);
  scheduler.start();
  await shutdown.wait();
  const busy = runner.running + runner.waiting;
  stopping = true;
  io.log(
    busy ? `stopping: terminating ${plural(busy, "job")}; the bus requeues them` : "stopping",
  );
  await scheduler.close();
  const counts: Record<string, number> = { ...runner.counts };
  counts.cancelled = (counts.cancelled ?? 0) - terminated;
  counts.terminated = terminated;
  const said = Object.entries(counts).filter(([, n]) => n > 0)
    .map(([state, n]) => `${state} ${n}`).join(", ");
  io.log(`stopped (${said || "no jobs"})`);
  return 0;
}

/** Logs the connection to the bus: opened, registered, lost, retried, and what the bus says. */
function watchBus(scheduler: SchedulerClient, config: Config, io: CliIo): void {
  const bus = scheduler.bus;
  bus.addEventListener("open", (event) => {
    io.log(`${event.reconnect ? "reconnected" : "connected"} to ${event.url} as ${config.name}`);
  });
  bus.addEventListener("registered", (event) => {
    const commands = config.commands.length === 0 ? "" : `, commands ${config.commands.join(" ")}`;
    const labels = Object.entries(config.labels).map(([k, v]) => `${k}=${v}`).join(" ");
    const { parsed } = event;
    const name = parsed.ok && parsed.message.cmd === "registered" ? parsed.message.name : undefined;
    // With --auth the bus names a scheduler after its token, whatever --name says.
    const as = name !== undefined && name !== config.name ? ` as ${name} (its token's name)` : "";
    io.log(
      `registered${as}: ${
        plural(config.slots, "slot")
      }, timeout ${config.timeoutS} s, evict ${config.evict}${commands}${
        labels && `, labels ${labels}`
      }`,
    );
    if (parsed.ok && parsed.message.cmd === "registered" && parsed.message.warning) {
      io.warn(parsed.message.warning);
    }
  });
  bus.addEventListener("seedbus", (event) => {
    io.log(
      `the bus speaks only the seed's protocol (${event.reason}): running its jobs as they ` +
        `come; it hears nothing back`,
    );
  });
  bus.addEventListener("close", (event) => {
    const at = config.urls.length > 1 ? ` at ${event.url}` : "";
    io.log(`lost the bus${at} (code ${event.code}); running jobs keep running; reconnecting`);
  });
  bus.addEventListener("reconnecting", (event) => {
    if (config.debug) {
      io.log(
        `bus not reachable; retry ${event.attempt} at ${event.url} in ${seconds(event.delayMs)}`,
      );
    } else if (event.delayMs === 0) {
      io.log(`trying the next bus, at ${event.url}`);
    } else if (event.attempt === config.urls.length) {
      const everyS = DEFAULT_BACKOFF.maxMs / 1000;
      const at = config.urls.join(", ");
      io.log(`bus not reachable at ${at}; retrying every ≤ ${everyS} s until it is`);
    }
  });
  let refusal = ""; // the refusal said last, not said again until the next open
  bus.addEventListener("open", () => refusal = "");
  bus.addEventListener("error", (event) => {
    if (config.debug) io.log(`bus error: ${event.error.message}`);
    else if (event.refused && event.error.message !== refusal) io.log(event.error.message);
    if (event.refused) refusal = event.error.message;
  });
  bus.addEventListener("message", (event) => {
    const message = event.message;
    if (config.debug) io.log(`bus says ${JSON.stringify(message)}`);
    else if (message.cmd === "error") io.log(`bus error: ${String(message.reason)}`);
    else if (message.cmd === "cancel") io.log(`bus cancels job ${message.id}: ${message.reason}`);
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
