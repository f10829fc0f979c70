// deno-lint-ignore-file no-console
/**
 * `deno task demo`: the whole system in one command. Starts a bus on a free loopback port, two
 * schedulers and two producers (one periodic, one gaussian), prefixes every line with its
 * source, and stops everything on Ctrl-C or after `--duration` seconds, leaving no process
 * behind.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { sleep } from "./core/mod.ts";
import { Proc, type ProcOutcome, ShutdownSignal } from "./process/mod.ts";

const HERE = new URL("./", import.meta.url);
const BUS = new URL("bus/main.ts", HERE);
const SCHEDULER = new URL("scheduler/main.ts", HERE);
const PRODUCER = new URL("producer/main.ts", HERE);

const USAGE = `Usage: deno task demo [-- options]

Starts a bus, schedulers and two producers (one periodic, one gaussian) on a free loopback
port, and shows their lines, each prefixed by its source. Within a minute you see jobs flowing,
evictions (an urgent job taking the slot of a less urgent one) and timeouts (jobs running past
the schedulers' -t). Ctrl-C stops everything.

Options:
  --duration S    stop by itself after S seconds (default: run until Ctrl-C)
  --schedulers N  how many schedulers (default 2)
  --slots N       slots per scheduler (default 2)
  --timeout S     job timeout of the schedulers, seconds (default 10)
  --period S      mean seconds between jobs of each producer (default 1.5)
  -h, --help      show this help

Examples:
  deno task demo
  deno task demo -- --duration 60 --schedulers 3`;

/** One component of the demo, run as a child process with prefixed output. */
interface Part {
  label: string;
  proc: Proc;
}

const COLORS = [36, 33, 35, 32, 34, 31, 96, 93];

function prefixer(label: string, width: number, color: number | undefined): string {
  const padded = `[${label}]`.padEnd(width + 2);
  return color === undefined ? padded : `\x1b[${color}m${padded}\x1b[0m`;
}

/** Finds a free TCP port on 127.0.0.1 (bound, then released for the bus to take). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Waits until the bus answers `GET /health`, or `timeoutMs` passes. */
async function waitForBus(port: number, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end && !signal.aborted) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health`, { signal });
      await response.body?.cancel();
      if (response.ok) return true;
    } catch {
      // not up yet
    }
    await sleep(100, signal);
  }
  return false;
}

function positive(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`--${name} must be a positive number, got '${text}'`);
  }
  return value;
}

function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  const value = positive(name, text, fallback);
  if (!Number.isInteger(value)) {
    throw new RangeError(`--${name} must be a positive integer, got '${text}'`);
  }
  return value;
}

/**
 * Runs the demo.
 *
 * @param args Command-line arguments (a leading `--` is dropped).
 * @returns The exit code: 0 when stopped by Ctrl-C, SIGTERM or `--duration`; 1 if a part
 *   failed to start; 2 for a bad flag.
 *
 * @example
 * ```ts
 * import { main } from "./demo.ts";
 * console.log(await main(["--help"])); // 0
 * ```
 */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "--") args = args.slice(1);
  let options;
  try {
    const { values } = parseArgs({
      args,
      options: {
        duration: { type: "string" },
        schedulers: { type: "string" },
        slots: { type: "string" },
        timeout: { type: "string" },
        period: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    options = {
      durationS: values.duration === undefined
        ? undefined
        : positive("duration", values.duration, 0),
      schedulers: positiveInteger("schedulers", values.schedulers, 2),
      slots: positiveInteger("slots", values.slots, 2),
      timeoutS: positive("timeout", values.timeout, 10),
      periodS: positive("period", values.period, 1.5),
    };
  } catch (error) {
    console.error(`demo: ${error instanceof Error ? error.message : error}`);
    console.error(USAGE);
    return 2;
  }

  // Ctrl-C, SIGTERM or --duration: we stop our parts ourselves, in order.
  using shutdown = new ShutdownSignal({
    signal: options.durationS === undefined
      ? undefined
      : AbortSignal.timeout(options.durationS * 1000),
  });
  const stopping = shutdown.signal;

  const port = freePort();
  const url = `ws://127.0.0.1:${port}`;
  const color = Deno.stdout.isTerminal() && !Deno.noColor;
  const labels = [
    "bus",
    ...Array.from({ length: options.schedulers }, (_, i) => `sched-${i + 1}`),
    "periodic",
    "gauss",
  ];
  const width = Math.max(...labels.map((label) => label.length));
  const parts: Part[] = [];
  const launch = (label: string, module: URL, args: string[], permissions: string[]): Part => {
    const prefix = prefixer(label, width, color ? COLORS[parts.length % COLORS.length] : undefined);
    const proc = Proc.deno(module, {
      args,
      permissions,
      graceMs: 5000, // a scheduler drains its own jobs (2 s grace each) before it exits
      output: "lines",
      onLine: (line) => console.log(`${prefix} ${line}`),
    }).start();
    const part = { label, proc };
    parts.push(part);
    return part;
  };
  const say = (text: string): void =>
    console.log(`${prefixer("demo", width, color ? 1 : undefined)} ${text}`);

  try {
    say(
      `bus on ${url}; ${options.schedulers} schedulers with ${options.slots} slots and a ` +
        `${options.timeoutS} s timeout; 2 producers (priority 0 = most urgent, 10 = least)`,
    );
    say(
      options.durationS === undefined
        ? "Ctrl-C stops everything"
        : `stopping in ${options.durationS} s (or Ctrl-C)`,
    );
    launch("bus", BUS, ["--port", String(port)], ["--allow-net"]);
    if (!await waitForBus(port, 15_000, stopping)) {
      if (stopping.aborted) return 0;
      say("the bus did not come up; stopping");
      return 1;
    }
    for (let i = 1; i <= options.schedulers; i++) {
      launch(`sched-${i}`, SCHEDULER, [
        "--url",
        url,
        "--name",
        `sched-${i}`,
        "-s",
        String(options.slots),
        "-t",
        String(options.timeoutS),
      ], ["--allow-net", "--allow-run", "--allow-read"]);
    }
    const period = String(options.periodS);
    launch("periodic", PRODUCER, ["--url", url, "--name", "periodic", "-p", period], [
      "--allow-net",
    ]);
    launch("gauss", PRODUCER, [
      "--url",
      url,
      "--name",
      "gauss",
      "-g",
      "-p",
      period,
      "-s",
      String(options.periodS / 2),
    ], ["--allow-net"]);

    // Run until stopped, or until a part dies on its own (then stop the rest).
    const died = Promise.race(parts.map((part) => part.proc.wait().then(() => part)));
    const first = await Promise.race([died, shutdown.wait()]);
    if (first) say(`${first.label} exited unexpectedly; stopping the others`);
    else {say(
        "stopping: producers first, then schedulers (their jobs are terminated), then the bus",
      );}
    return first ? 1 : 0;
  } finally {
    await stopAll(parts, say);
  }
}

/** Stops the parts in order: producers, schedulers, then the bus; each drains on SIGTERM. */
async function stopAll(parts: Part[], say: (text: string) => void): Promise<void> {
  const stages = [
    parts.filter((part) => part.label === "periodic" || part.label === "gauss"),
    parts.filter((part) => part.label.startsWith("sched-")),
    parts.filter((part) => part.label === "bus"),
  ];
  for (const stage of stages) {
    const outcomes: ProcOutcome[] = await Promise.all(stage.map((part) => part.proc.terminate()));
    outcomes.forEach((outcome, i) => {
      if (outcome.code !== 0) {
        say(
          `${
            stage[i].label
          } ended: ${outcome.result} (code ${outcome.code}, signal ${outcome.signal})`,
        );
      }
    });
  }
  say("all stopped");
}

if (import.meta.main) Deno.exit(await main(Deno.args));
