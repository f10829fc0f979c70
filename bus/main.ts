// deno-lint-ignore-file no-console
/**
 * `deno task bus`: runs the bus server until SIGINT or SIGTERM.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BusServer } from "./server.ts";
import { ShutdownSignal } from "../process/shutdown_signal.ts";

const USAGE = `Usage: deno task bus [-- options]

The job bus: a WebSocket server between producers, schedulers and monitors
(protocol: docs/protocol.md). Jobs wait in the bus's priority queue until a
scheduler can take them; each job goes to one scheduler.

Options:
  --host HOST          interface to listen on (default 127.0.0.1)
  --port PORT          port, 0 for any free one (default 8101)
  --max-queue N        most jobs waiting in the bus (default 100000)
  --max-frame BYTES    largest frame accepted; bigger closes with 1009 (default 65536)
  --ping-timeout S     seconds without a pong before a peer counts as gone (default 30)
  --broadcast          every job to every scheduler (the seed's behavior)
  -d, --debug          log every job event and dispatch
  -h, --help           show this help

Examples:
  deno task bus
  deno task bus -- --port 9000 --max-queue 1000 -d
  curl http://127.0.0.1:8101/health`;

type Level = "debug" | "info" | "warn";

/**
 * Runs the bus CLI.
 *
 * @param args Command-line arguments (a leading `--` is dropped).
 * @returns The exit code: 0 after SIGINT/SIGTERM or `--help`, 2 on a bad flag.
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * const code = await main(["--help"]); // prints the usage
 * console.log(code); // 0
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(args[0] === "--" ? args.slice(1) : args);
  } catch (error) {
    console.error(`bus: ${(error as Error).message}`);
    console.error(USAGE);
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const log = (level: Level, line: string): void => {
    if (level === "debug" && !options.debug) return;
    const text = `${timestamp(new Date())} ${level === "info" ? "" : `${level}: `}${line}`;
    if (level === "warn") console.error(text);
    else console.log(text);
  };

  const bus = new BusServer({
    hostname: options.host,
    port: options.port,
    maxQueue: options.maxQueue,
    maxFrameBytes: options.maxFrame,
    pingTimeoutMs: options.pingTimeoutS * 1000,
    broadcast: options.broadcast,
    // Without -d only requeues are logged: other job events are then never even built.
    jobEventStates: options.debug ? undefined : ["requeued"],
  });
  bus.addEventListener("connection", (e) => {
    if (e.open) log("debug", `${e.client} connected from ${e.detail.remote}`);
    else {log(
        "info",
        `${e.client} closed (${e.detail.code}${e.detail.reason ? ` ${e.detail.reason}` : ""})`,
      );}
  });
  bus.addEventListener("registration", (e) => {
    const name = e.name === e.client ? "" : ` "${e.name}"`;
    log("info", `${e.client} registered as ${e.role}${name} (protocol ${e.protocol})`);
  });
  bus.addEventListener("rejection", (e) => {
    if (e.suppressed > 0) log("warn", `${e.client}: ${e.suppressed} more rejections not shown`);
    else log("warn", `${e.client}: rejected: ${e.reason}`);
  });
  bus.addEventListener("job", ({ job }) => {
    const where = job.scheduler ? ` at ${job.scheduler}` : "";
    const why = job.reason ? ` (${job.reason})` : "";
    log(
      job.state === "requeued" ? "info" : "debug",
      `job ${job.id} p${job.priority} ${job.state}${where}${why}`,
    );
  });
  if (options.debug) {
    bus.addEventListener("dispatch", ({ dispatch: d }) => {
      const preempt = d.preempting ? `, to evict ${d.preempting}` : "";
      log("debug", `job ${d.id} p${d.priority} -> ${d.scheduler}${preempt}`);
    });
    bus.addEventListener("notice", (e) => log("debug", e.message));
  }

  using shutdown = new ShutdownSignal();
  try {
    let addr: Deno.NetAddr;
    try {
      addr = bus.listen();
    } catch (error) {
      const inUse = error instanceof Deno.errors.AddrInUse
        ? " (another bus there? stop it, or choose another --port, 0 for any free one)"
        : "";
      console.error(
        `bus: cannot listen on ${options.host}:${options.port}: ${
          (error as Error).message
        }${inUse}`,
      );
      return 1;
    }
    const mode = options.broadcast
      ? "broadcast: every job to every scheduler"
      : "each job to one scheduler";
    log("info", `bus listening on ws://${addr.hostname}:${addr.port}/ (${mode})`);
    await shutdown.wait();
    log("info", `${shutdown.received}: closing every connection`);
    await bus.close();
    log("info", "bus stopped");
    return 0;
  } finally {
    await bus.close();
  }
}

interface CliOptions {
  host: string;
  port: number;
  maxQueue: number;
  maxFrame: number;
  pingTimeoutS: number;
  broadcast: boolean;
  debug: boolean;
  help: boolean;
}

function parseOptions(args: string[]): CliOptions {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8101" },
      "max-queue": { type: "string", default: "100000" },
      "max-frame": { type: "string", default: "65536" },
      "ping-timeout": { type: "string", default: "30" },
      broadcast: { type: "boolean", default: false },
      debug: { type: "boolean", short: "d", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  return {
    host: values.host,
    port: integer("--port", values.port, 0, 65535),
    maxQueue: integer("--max-queue", values["max-queue"], 1),
    maxFrame: integer("--max-frame", values["max-frame"], 1),
    pingTimeoutS: seconds("--ping-timeout", values["ping-timeout"]),
    broadcast: values.broadcast,
    debug: values.debug,
    help: values.help,
  };
}

function integer(flag: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new RangeError(`${flag} must be an integer ${min}..${max}, got "${text}"`);
  }
  return value;
}

function seconds(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${flag} must be a number of seconds >= 0, got "${text}"`);
  }
  return value;
}

/** Local time `HH:MM:SS.mmm`, the stamp of every CLI's lines (bus, scheduler, producer). */
function timestamp(d: Date): string {
  return `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
