/**
 * `deno task bus`: runs the bus server until SIGINT or SIGTERM.
 *
 * @module
 */

import {
  type CliIo,
  type Flags,
  formatUsage,
  integerFlag,
  type LogFields,
  type MainOptions,
  plural,
  runCli,
  UsageError,
} from "../cli/mod.ts";
import { ShutdownSignal } from "../process/shutdown_signal.ts";
import { BusServer } from "./server.ts";
import { openDataDir } from "./data_dir.ts";
import { SqliteStore } from "./sqlite_store.ts";
import type { JobStore } from "./job_store.ts";
import { DataDirError, StoreError } from "./store_errors.ts";
import { parseKeepFinished } from "./keep_finished.ts";
import { BusMetrics } from "./bus_metrics.ts";
import { BusSummary } from "./bus_summary.ts";
import { tokenMain } from "./token_cli.ts";
import { TokenFileError, TokenStore } from "./token_store.ts";

/** The smallest `--max-frame`: room for any job a producer may reasonably send. */
const MIN_FRAME_BYTES = 1024;

/** The usage text printed by `--help` and after a bad flag. */
export const USAGE: string = formatUsage({
  command: "deno task bus",
  about: `The job bus: a WebSocket server between producers, schedulers and monitors
(protocol: docs/protocol.md). Jobs wait in the bus's priority queue until a
scheduler can take them; each job goes to one scheduler.`,
  sections: [{
    title: "Options",
    rows: [
      ["--host HOST", "interface to listen on (default 127.0.0.1)"],
      ["--port PORT", "port, 0 for any free one (default 8101)"],
      ["--max-queue N", "most jobs waiting in the bus (default 100000)"],
      ["--max-queue-per-owner N", "most unfinished jobs of one owner (default: no limit)"],
      ["--max-connections N", "most WebSocket connections at once; more get 503 (default 1000)"],
      ["--max-rate N", "messages a second per connection, bursts of twice that (default 10000)"],
      ["--cert FILE", "certificate chain (PEM): serve wss:// and https:// (needs --key)"],
      ["--key FILE", "private key (PEM) of --cert"],
      [
        "--insecure",
        "allow a --host that is not loopback without --auth (anyone reaching it may use it)",
      ],
      [
        "--max-frame BYTES",
        `largest frame accepted, >= ${MIN_FRAME_BYTES}; bigger closes with 1009 (default 65536)`,
      ],
      [
        "--ping-timeout S",
        "whole seconds without a pong before a peer counts as gone (default 30)",
      ],
      ["--broadcast", "every job to every scheduler (the seed's behavior)"],
      ["--data DIR", "keep jobs, results and events in DIR/bus.sqlite (default ./sched-data)"],
      ["--memory", "keep them in memory only: a restart forgets every job (tests, throwaway runs)"],
      [
        "--store URL",
        "postgres://USER@HOST:PORT/DB: keep them in PostgreSQL instead (docs/store.md)",
      ],
      [
        "--sync MODE",
        "full: a job is on disk before it is accepted; normal: faster, the last moments of " +
        "acceptances may be lost on power loss, not on a crash (default full)",
      ],
      [
        "--keep-finished AGE[,N]",
        "keep finished jobs this long (30m, 12h, 7d) and at most N of them (default 7d,100000)",
      ],
      [
        "--recover-grace S",
        "after a restart, seconds jobs stay with their schedulers for them to come back " +
        "before they are requeued (default 30)",
      ],
      ["--auth FILE", "tokens required (made by: deno task bus -- token add NAME --role ROLE)"],
      ["--allow-seed-clients", "with --auth: let in seed (protocol 1) clients without a token"],
      ["--metrics-open", "with --auth: GET /metrics without a token (for Prometheus)"],
      ["--summary-every S", "a summary line every S seconds when something changed; 0: none (10)"],
      ["--log-format F", "text (default) or json: one JSON object per log line"],
      ["-d, --debug", "log every job event and dispatch"],
      ["-h, --help", "show this help"],
    ],
  }, {
    title: "Exit codes",
    rows: [
      ["0", "stopped by Ctrl-C or SIGTERM (every connection closed first)"],
      [
        "1",
        "cannot listen (port in use, no permission), cannot read the --auth file, or cannot " +
        "open the data directory (in use by another bus, corrupt, unreadable) or reach the " +
        "--store database (or its schema is newer than this bus)",
      ],
      [
        "2",
        "bad command line, unreadable --cert/--key, or a --host not loopback without --auth",
      ],
    ],
  }],
  examples: [
    "deno task bus",
    "deno task bus -- --port 9000 --max-queue 1000 -d",
    "deno task bus -- --data /var/lib/sched --keep-finished 30d,1000000",
    "deno task bus -- --memory --port 0",
    "deno task bus -- --store postgres://sched@127.0.0.1:5432/sched",
    "curl http://127.0.0.1:8101/health",
    "deno task bus -- token add alice --role producer   # see: deno task bus -- token --help",
    "deno task bus -- --auth sched-auth.json",
  ],
});

const OPTIONS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "string", default: "8101" },
  "max-queue": { type: "string", default: "100000" },
  "max-frame": { type: "string", default: "65536" },
  "ping-timeout": { type: "string", default: "30" },
  "max-queue-per-owner": { type: "string" },
  "max-connections": { type: "string", default: "1000" },
  "max-rate": { type: "string", default: "10000" },
  cert: { type: "string" },
  key: { type: "string" },
  insecure: { type: "boolean", default: false },
  broadcast: { type: "boolean", default: false },
  data: { type: "string" },
  memory: { type: "boolean", default: false },
  store: { type: "string" },
  sync: { type: "string", default: "full" },
  "keep-finished": { type: "string", default: "7d,100000" },
  "recover-grace": { type: "string", default: "30" },
  auth: { type: "string" },
  "allow-seed-clients": { type: "boolean", default: false },
  "metrics-open": { type: "boolean", default: false },
  "summary-every": { type: "string", default: "10" },
  debug: { type: "boolean", short: "d", default: false },
} as const;

/** The parsed command line. */
interface Config {
  host: string;
  port: number;
  maxQueue: number;
  maxFrame: number;
  pingTimeoutS: number;
  maxQueuePerOwner: number | undefined;
  maxConnections: number;
  maxRate: number;
  cert: string | undefined;
  key: string | undefined;
  insecure: boolean;
  broadcast: boolean;
  /** The data directory, or undefined with --memory. */
  data: string | undefined;
  /** `--store`'s PostgreSQL URL (then `data` is unused). */
  pg: string | undefined;
  /** The store's options but its path. */
  store: { sync: "full" | "normal"; keepFinished: { ms: number; count: number } };
  recoverGraceS: number;
  debug: boolean;
  auth: string | undefined;
  allowSeedClients: boolean;
  metricsOpen: boolean;
  summaryEveryS: number;
}

/**
 * Runs the bus CLI.
 *
 * @param args Command-line arguments (a leading `--` is dropped).
 * @param options Injection points for tests: output, clock, a stop signal.
 * @returns The exit code: 0 after SIGINT/SIGTERM (or `options.signal`) or `--help`, 1 if it
 *   cannot listen, 2 on a bad flag.
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * const code = await main(["--help"], { stdout: () => {} });
 * console.log(code); // 0
 * ```
 */
export function main(args: string[], options: MainOptions = {}): Promise<number> {
  const rest = args[0] === "--" ? args.slice(1) : args;
  if (rest[0] === "token") return tokenMain(rest.slice(1), options);
  return runCli({ name: "bus", usage: USAGE, options: OPTIONS, configure, run }, args, options);
}

function configure({ values }: Flags<typeof OPTIONS>): Config {
  if (values.host.trim() === "") throw new UsageError("--host must not be empty");
  if (values.auth?.trim() === "") throw new UsageError("--auth must not be empty");
  if (values["allow-seed-clients"] && values.auth === undefined) {
    throw new UsageError("--allow-seed-clients needs --auth (without it every client is let in)");
  }
  if (values.memory && values.data !== undefined) {
    throw new UsageError("--memory and --data go against each other: give one");
  }
  if (values.data?.trim() === "") throw new UsageError("--data must not be empty");
  const pg = values.store;
  if (pg !== undefined) {
    if (values.memory || values.data !== undefined) {
      throw new UsageError("--store and --data/--memory go against each other: give one");
    }
    if (!/^postgres(ql)?:\/\/./.test(pg)) {
      throw new UsageError(`--store must be a postgres://USER@HOST:PORT/DB URL, got "${pg}"`);
    }
  }
  const sync = values.sync;
  if (sync !== "full" && sync !== "normal") {
    throw new UsageError(`--sync must be full or normal, got "${sync}"`);
  }
  const keep = parseKeepFinished(values["keep-finished"]);
  if (typeof keep === "string") throw new UsageError(`--keep-finished: ${keep}`);
  return {
    data: values.memory || pg !== undefined ? undefined : values.data ?? "./sched-data",
    pg,
    store: { sync, keepFinished: keep },
    recoverGraceS: integerFlag("--recover-grace", values["recover-grace"], { min: 0 }),
    host: values.host,
    port: integerFlag("--port", values.port, { max: 65535 }),
    maxQueue: integerFlag("--max-queue", values["max-queue"], { min: 1 }),
    maxFrame: integerFlag("--max-frame", values["max-frame"], { min: MIN_FRAME_BYTES }),
    // Deno's WebSocket idle timeout counts whole seconds.
    pingTimeoutS: integerFlag("--ping-timeout", values["ping-timeout"], { min: 1 }),
    maxQueuePerOwner: values["max-queue-per-owner"] === undefined
      ? undefined
      : integerFlag("--max-queue-per-owner", values["max-queue-per-owner"], { min: 1 }),
    maxConnections: integerFlag("--max-connections", values["max-connections"], { min: 1 }),
    maxRate: integerFlag("--max-rate", values["max-rate"], { min: 1 }),
    cert: values.cert,
    key: values.key,
    insecure: values.insecure,
    broadcast: values.broadcast,
    debug: values.debug,
    auth: values.auth,
    allowSeedClients: values["allow-seed-clients"],
    metricsOpen: values["metrics-open"],
    summaryEveryS: integerFlag("--summary-every", values["summary-every"], { min: 0 }),
  };
}

async function run(config: Config, io: CliIo): Promise<number> {
  const exposure = checkExposure(config.host, config.auth !== undefined, config.insecure);
  if (exposure.refuse) {
    io.err(`bus: ${exposure.refuse}`);
    return 2;
  }
  if (exposure.warn) io.warn(`bus: ${exposure.warn}`);
  const tls = readTls(config);
  if (typeof tls === "string") {
    io.err(`bus: ${tls}`);
    return 2;
  }
  let auth: TokenStore | undefined;
  try {
    auth = config.auth === undefined
      ? undefined
      : await TokenStore.load(config.auth, { clock: io.clock });
  } catch (error) {
    if (!(error instanceof TokenFileError)) throw error;
    io.err(`bus: --auth: ${error.message}`);
    return 1;
  }
  let store: JobStore;
  try {
    store = await openStore(config);
  } catch (error) {
    if (!(error instanceof StoreError || error instanceof DataDirError)) throw error;
    io.err(`bus: ${error.message}`);
    return 1;
  }
  await using _closeStore = { [Symbol.asyncDispose]: async () => await store.close() };
  const bus = new BusServer({
    store,
    recoverGraceMs: config.recoverGraceS * 1000,
    metrics: { text: (): string => metrics.render(), open: config.metricsOpen },
    ...(auth ? { auth, allowSeedClients: config.allowSeedClients } : {}),
    ...tls,
    maxQueuePerOwner: config.maxQueuePerOwner,
    maxConnections: config.maxConnections,
    maxRate: config.maxRate,
    hostname: config.host,
    port: config.port,
    maxQueue: config.maxQueue,
    maxFrameBytes: config.maxFrame,
    pingTimeoutMs: config.pingTimeoutS * 1000,
    broadcast: config.broadcast,
    clock: io.clock,
  });
  const metrics = new BusMetrics(bus, { clock: io.clock });
  using _summary = summarize(bus, config, io);
  watch(bus, config, io);
  using shutdown = new ShutdownSignal({ signal: io.signal });
  try {
    let addr: Deno.NetAddr;
    try {
      addr = bus.listen();
    } catch (error) {
      const inUse = error instanceof Deno.errors.AddrInUse
        ? " (another bus there? stop it, or choose another --port, 0 for any free one)"
        : "";
      const why = error instanceof Error ? error.message : String(error);
      io.err(`bus: cannot listen on ${config.host}:${config.port}: ${why}${inUse}`);
      return 1;
    }
    const mode = config.broadcast
      ? "broadcast: every job to every scheduler"
      : "each job to one scheduler";
    const scheme = tls.cert === undefined ? "ws" : "wss";
    io.log(`bus listening on ${scheme}://${addr.hostname}:${addr.port}/ (${mode})`);
    logStore(bus, config, io);
    if (auth) logAuth(auth, config, io);
    if (exposure.note) io.log(exposure.note);
    await shutdown.wait();
    io.log(`${shutdown.received ?? "stop"}: closing every connection`);
    await bus.close();
    io.log("bus stopped");
    return 0;
  } finally {
    await bus.close();
  }
}

/** The store the flags name; PostgreSQL's module (and npm:postgres) is loaded only for it. */
async function openStore(config: Config): Promise<JobStore> {
  if (config.pg !== undefined) {
    const { PostgresStore } = await import("./postgres_store.ts");
    return await PostgresStore.open({ url: config.pg, keepFinished: config.store.keepFinished });
  }
  return config.data === undefined
    ? new SqliteStore({ ...config.store, path: ":memory:" })
    : openDataDir(config.data, config.store);
}

/** Says at start where jobs are kept and what a restart found. */
function logStore(bus: BusServer, config: Config, io: CliIo): void {
  const where = config.pg !== undefined
    ? `in PostgreSQL at ${bus.status().store.location}`
    : config.data === undefined
    ? "in memory only (--memory): a restart forgets every job"
    : `in ${config.data} (sync ${config.store.sync})`;
  io.log(`jobs kept ${where}`);
  const status = bus.status();
  const found = Object.values(status.recovering).reduce((sum, n) => sum + n, 0);
  if (status.queue.length > 0 || found > 0) {
    io.log(
      `recovered ${plural(status.queue.length, "waiting job")}` +
        (found > 0
          ? ` and ${plural(found, "job")} at schedulers, theirs for ${config.recoverGraceS} s ` +
            "while they reconnect"
          : ""),
    );
  }
}

/** The `--summary-every` lines (none for 0). */
function summarize(bus: BusServer, config: Config, io: CliIo): Disposable {
  if (config.summaryEveryS === 0) return { [Symbol.dispose]: () => {} };
  const summary = new BusSummary(bus, {
    everyS: config.summaryEveryS,
    clock: io.clock,
    log: (line, fields) => io.log(`summary: ${line}`, fields),
  });
  return { [Symbol.dispose]: () => summary.close() };
}

/** Says at start who may come in with --auth. */
function logAuth(auth: TokenStore, config: Config, io: CliIo): void {
  const tokens = auth.list();
  io.log(
    `auth: ${plural(tokens.length, "token")} from ${auth.path}; every client needs one` +
      (config.allowSeedClients ? ", except seed (protocol 1) clients (--allow-seed-clients)" : ""),
  );
  if (tokens.length === 0) io.warn(`${auth.path} has no tokens: nobody can connect`);
}

/**
 * Whether the bus may listen on `host`: without `--auth` only on loopback, unless `--insecure`
 * (then with a loud warning); a note that anyone on this machine may use a loopback bus.
 */
function checkExposure(
  host: string,
  authEnabled: boolean,
  insecure: boolean,
): { refuse?: string; warn?: string; note?: string } {
  if (authEnabled) return {};
  if (isLoopback(host)) return { note: "no --auth: anyone on this machine may use the bus" };
  if (!insecure) {
    return {
      refuse: `refusing to listen on ${host} without --auth: anyone who reaches it could run ` +
        "jobs (use --auth FILE, or --insecure to accept that)",
    };
  }
  return {
    warn: `--insecure: listening on ${host} without --auth: anyone who reaches it may submit, ` +
      "take and watch jobs",
  };
}

/** Whether a `--host` is a loopback address: 127.0.0.0/8, ::1, localhost. */
function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (bare === "localhost" || bare === "::1" || bare === "0:0:0:0:0:0:0:1") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/** The PEM texts of `--cert` and `--key` (both or neither), or a one-line reason. */
function readTls(config: Config): { cert?: string; key?: string } | string {
  if (config.cert === undefined && config.key === undefined) return {};
  if (config.cert === undefined || config.key === undefined) {
    return "--cert and --key go together: give both or neither";
  }
  const read = (flag: string, path: string): string => {
    try {
      return Deno.readTextFileSync(path);
    } catch (error) {
      throw new Error(`${flag}: cannot read ${path} (${(error as Error).message})`);
    }
  };
  try {
    return { cert: read("--cert", config.cert), key: read("--key", config.key) };
  } catch (error) {
    return (error as Error).message;
  }
}

/** Logs what the bus does: connections, registrations, rejections, requeues (all with -d). */
function watch(bus: BusServer, config: Config, io: CliIo): void {
  const debug = (line: string, fields?: LogFields): void => {
    if (config.debug) io.log(`debug: ${line}`, fields);
  };
  bus.addEventListener("connection", (e) => {
    const { remote, code, reason } = e.detail;
    if (e.open) return debug(`${e.client} connected from ${remote}`, { client: e.client, remote });
    io.log(`${e.client} closed (${code}${reason ? ` ${reason}` : ""})`, {
      client: e.client,
      code,
      reason,
    });
  });
  bus.addEventListener("registration", (e) => {
    const name = e.name === e.client ? "" : ` "${e.name}"`;
    io.log(`${e.client} registered as ${e.role}${name} (protocol ${e.protocol})`, {
      client: e.client,
      role: e.role,
      name: e.name,
      protocol: e.protocol,
    });
  });
  bus.addEventListener("rejection", (e) => {
    if (e.suppressed > 0) {
      io.warn(`${e.client}: ${plural(e.suppressed, "more rejection")} not shown`, {
        client: e.client,
        suppressed: e.suppressed,
      });
    } else io.warn(`${e.client}: rejected: ${e.reason}`, { client: e.client, reason: e.reason });
  });
  bus.addEventListener("job", ({ job }) => {
    const where = job.scheduler ? ` at ${job.scheduler}` : "";
    const why = job.reason ? ` (${job.reason})` : "";
    const line = `job ${job.id} p${job.priority} ${job.state}${where}${why}`;
    const { id, priority, state, scheduler, owner, reason } = job;
    const fields = { job: id, priority, state, scheduler, owner, reason };
    if (job.state === "requeued") io.log(line, fields);
    else debug(line, fields);
  });
  if (config.debug) {
    bus.addEventListener("dispatch", ({ dispatch: d }) => {
      const preempt = d.preempting ? `, to evict ${d.preempting}` : "";
      debug(`job ${d.id} p${d.priority} -> ${d.scheduler}${preempt}`, {
        job: d.id,
        priority: d.priority,
        scheduler: d.scheduler,
        preempting: d.preempting,
      });
    });
  }
  bus.addEventListener("notice", (e) => {
    if (e.level === "warning") io.warn(e.message);
    else if (e.level === "info") io.log(e.message);
    else debug(e.message);
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
