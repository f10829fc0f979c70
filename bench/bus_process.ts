/**
 * The bus CLI in a process of its own, for the benches that measure it end to end
 * (`bus_store.ts`, `bus_cluster.ts`): started on a free port, its log read until it listens (and
 * until a line of choice), stopped by a signal; and what `/proc` says of a process.
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url);

/** A bus CLI running in a process of its own. */
export interface BusProcess {
  /** The process. */
  child: Deno.ChildProcess;
  /** Its WebSocket URL (`ws://127.0.0.1:PORT/`). */
  url: string;
  /** Its pid. */
  pid: number;
  /** Milliseconds from the spawn to its listening line. */
  listenMs: number;
  /** Its log, as read so far. */
  lines: string[];
  /** Resolves once its output has ended. */
  drained: Promise<void>;
}

/**
 * Starts `deno run -A bus/main.ts --port 0 ...args` and waits for its listening line (and for a
 * line matching `ready`, when given).
 *
 * @param args The bus's flags after `--port 0`.
 * @param options `v8`: V8 flags for the process (`--v8-flags=`); `ready`: a line to wait for.
 * @returns The running bus.
 * @example
 * ```ts
 * import { startBusProcess, stopBusProcess } from "./bus_process.ts";
 * const bus = await startBusProcess(["--memory"]);
 * console.log(bus.url.startsWith("ws://")); // true
 * await stopBusProcess(bus, "SIGTERM");
 * ```
 */
export async function startBusProcess(
  args: string[],
  options: { v8?: string; ready?: RegExp } = {},
): Promise<BusProcess> {
  const { v8, ready } = options;
  const argv = [
    "run",
    "-A",
    ...(v8 ? [`--v8-flags=${v8}`] : []),
    ...[new URL("bus/main.ts", ROOT).pathname, "--port", "0", ...args],
  ];
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: argv,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let listenMs = 0;
  let match: RegExpMatchArray | null = null;
  while (!(match = seen.match(/ws:\/\/[\d.]+:\d+\//)) || (ready && !ready.test(seen))) {
    if (match && listenMs === 0) listenMs = performance.now() - t0;
    const { value, done } = await reader.read();
    if (done) throw new Error(`the bus exited before it was ready: ${seen}`);
    seen += value;
  }
  if (listenMs === 0) listenMs = performance.now() - t0;
  const lines = [seen];
  const drained = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      lines.push(value);
    }
    reader.releaseLock();
  })();
  return { child, url: match[0], pid: child.pid, listenMs, lines, drained };
}

/**
 * Stops a bus process with a signal and waits for it.
 *
 * @param bus The bus.
 * @param signal `SIGTERM` (it closes its connections) or `SIGKILL`.
 * @example
 * ```ts
 * import { startBusProcess, stopBusProcess } from "./bus_process.ts";
 * await stopBusProcess(await startBusProcess(["--memory"]), "SIGKILL");
 * ```
 */
export async function stopBusProcess(bus: BusProcess, signal: Deno.Signal): Promise<void> {
  bus.child.kill(signal);
  await bus.drained;
  await bus.child.status;
}

/**
 * CPU seconds (user + system) a process has used so far, from `/proc/PID/stat`.
 *
 * @param pid The process.
 * @returns The seconds; 0 once it is gone.
 * @example
 * ```ts
 * import { cpuSeconds } from "./bus_process.ts";
 * console.log(cpuSeconds(Deno.pid) >= 0); // true
 * ```
 */
export function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * Resident set size in MB, from `VmRSS` of `/proc/PID/status`.
 *
 * @param pid The process.
 * @returns The megabytes (NaN when unknown).
 * @example
 * ```ts
 * import { rssMb } from "./bus_process.ts";
 * console.log(rssMb(Deno.pid) > 1); // true
 * ```
 */
export function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? NaN);
  return kb / 1024;
}
