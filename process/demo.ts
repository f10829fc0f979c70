// deno-lint-ignore-file no-console
/**
 * The process demo (the seed's `test_process`): five showcases of `Proc`, each printing what it
 * does and the outcome as timestamped lines. Run all of them, or some by name:
 *
 * ```sh
 * deno task process-demo            # all five, about 17 s
 * deno task process-demo -- timeout # just one
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { sleep } from "../core/sleep.ts";
import { Proc, type ProcOutcome, ShutdownSignal } from "./mod.ts";

const CHILD = new URL("./demo_child.ts", import.meta.url);

interface Showcase {
  summary: string;
  run(signal: AbortSignal): Promise<void>;
}

const SHOWCASES: Record<string, Showcase> = {
  raw: {
    summary: "three bare Deno.Command processes (1, 2, 3 s) started and awaited together",
    run: async (signal) => {
      const children = [1, 2, 3].map((seconds) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "--no-check", "-q", CHILD.href, String(seconds)],
          stdin: "null",
        }).spawn()
      );
      log(`started pids ${children.map((child) => child.pid).join(", ")}; awaiting them all`);
      const onAbort = (): void => children.forEach((child) => child.kill());
      signal.addEventListener("abort", onAbort);
      try {
        const statuses = await Promise.all(children.map((child) => child.status));
        log(`all done: exit codes ${statuses.map((status) => status.code).join(", ")}`);
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
    },
  },
  await: {
    summary: "one Proc (2 s) started and awaited",
    run: async (signal) => {
      const proc = Proc.deno(CHILD, { args: ["2"] }).start({ signal });
      log(`started pid ${proc.pid}; awaiting it`);
      log(`outcome: ${describe(await proc.wait())}`);
    },
  },
  callback: {
    summary: "a Proc (2 s, exit code 3) whose done callback reports the outcome",
    run: async (signal) => {
      const proc = Proc.deno(CHILD, { args: ["2", "3"] });
      proc.onDone((outcome) => log(`done callback: ${describe(outcome)}`));
      proc.start({ signal });
      log(`started pid ${proc.pid} with a done callback`);
      await proc.wait();
    },
  },
  timeout: {
    summary: "a 10 s Proc with a 5 s timeout",
    run: async (signal) => {
      const proc = Proc.deno(CHILD, { args: ["10"] }).start({ timeoutMs: 5000, signal });
      log(`started pid ${proc.pid} with timeoutMs 5000`);
      log(`outcome: ${describe(await proc.wait())}`);
    },
  },
  terminate: {
    summary: "a 10 s Proc terminated after 5 s",
    run: async (signal) => {
      const proc = Proc.deno(CHILD, { args: ["10"] }).start({ signal });
      log(`started pid ${proc.pid}; terminating it in 5 s`);
      await sleep(5000, signal);
      if (proc.state === "running") log("terminating (SIGTERM, SIGKILL after 2 s)");
      log(`outcome: ${describe(await proc.terminate())}`);
    },
  },
};

const USAGE = `Usage: deno task process-demo [-- [showcase...]]

Runs the Proc showcases (all of them by default), printing timestamped lines.

Showcases:
${
  Object.entries(SHOWCASES).map(([name, { summary }]) => `  ${name.padEnd(10)} ${summary}`).join(
    "\n",
  )
}

Options:
  -h, --help  show this help

Examples:
  deno task process-demo
  deno task process-demo -- timeout terminate`;

function log(text: string): void {
  console.log(`${new Date().toISOString().slice(11, 23)} ${text}`);
}

function describe(outcome: ProcOutcome): string {
  return `${outcome.result} (code ${outcome.code}, signal ${outcome.signal}, pid ${outcome.pid}, ` +
    `${outcome.durationMs} ms)`;
}

/**
 * Runs the demo.
 *
 * @param args Command-line arguments (a leading `--` is dropped): showcase names, or `--help`.
 * @returns The exit code: 0, or 2 for a bad flag or showcase name.
 *
 * @example
 * ```ts
 * import { main } from "./demo.ts";
 * const code = await main(["--help"]);
 * console.log(code); // 0
 * ```
 */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "--") args = args.slice(1);
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { help: { type: "boolean", short: "h" } },
      allowPositionals: true,
    });
  } catch (error) {
    console.error(`process-demo: ${error instanceof Error ? error.message : error}`);
    console.error(USAGE);
    return 2;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  const names = parsed.positionals.length > 0 ? parsed.positionals : Object.keys(SHOWCASES);
  const unknown = names.find((name) => !Object.hasOwn(SHOWCASES, name));
  if (unknown !== undefined) {
    console.error(`process-demo: unknown showcase '${unknown}'`);
    console.error(USAGE);
    return 2;
  }

  // SIGINT/SIGTERM: stop the current showcase's jobs (through the abort signal), skip the rest.
  using shutdown = new ShutdownSignal();
  const signal = shutdown.signal;
  for (const name of names) {
    if (signal.aborted) break;
    log(`== ${name}: ${SHOWCASES[name].summary}`);
    await SHOWCASES[name].run(signal);
  }
  if (signal.aborted) log("interrupted: jobs terminated");
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
