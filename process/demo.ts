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

import {
  type CliIo,
  type Flags,
  formatUsage,
  type MainOptions,
  runCli,
  UsageError,
} from "../cli/mod.ts";
import { sleep } from "../core/sleep.ts";
import { Proc, type ProcOutcome, ShutdownSignal } from "./mod.ts";

const CHILD = new URL("./demo_child.ts", import.meta.url);

interface Showcase {
  summary: string;
  run(signal: AbortSignal, log: (text: string) => void): Promise<void>;
}

const SHOWCASES: Record<string, Showcase> = {
  raw: {
    summary: "three bare Deno.Command processes (1, 2, 3 s) started and awaited together",
    run: async (signal, log) => {
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
    run: async (signal, log) => {
      const proc = Proc.deno(CHILD, { args: ["2"] }).start({ signal });
      log(`started pid ${proc.pid}; awaiting it`);
      log(`outcome: ${describe(await proc.wait())}`);
    },
  },
  callback: {
    summary: "a Proc (2 s, exit code 3) whose done callback reports the outcome",
    run: async (signal, log) => {
      const proc = Proc.deno(CHILD, { args: ["2", "3"] });
      proc.onDone((outcome) => log(`done callback: ${describe(outcome)}`));
      proc.start({ signal });
      log(`started pid ${proc.pid} with a done callback`);
      await proc.wait();
    },
  },
  timeout: {
    summary: "a 10 s Proc with a 5 s timeout",
    run: async (signal, log) => {
      const proc = Proc.deno(CHILD, { args: ["10"] }).start({ timeoutMs: 5000, signal });
      log(`started pid ${proc.pid} with timeoutMs 5000`);
      log(`outcome: ${describe(await proc.wait())}`);
    },
  },
  terminate: {
    summary: "a 10 s Proc terminated after 5 s",
    run: async (signal, log) => {
      const proc = Proc.deno(CHILD, { args: ["10"] }).start({ signal });
      log(`started pid ${proc.pid}; terminating it in 5 s`);
      await sleep(5000, signal);
      if (proc.state === "running") log("terminating (SIGTERM, SIGKILL after 2 s)");
      log(`outcome: ${describe(await proc.terminate())}`);
    },
  },
};

/** The usage text printed by `--help` and after a bad argument. */
export const USAGE: string = formatUsage({
  command: "deno task process-demo",
  args: "[-- showcase...]",
  about: "Runs the Proc showcases (all of them by default), printing timestamped lines.",
  sections: [
    {
      title: "Showcases",
      rows: Object.entries(SHOWCASES).map(([name, { summary }]) => [name, summary] as const),
    },
    { title: "Options", rows: [["-h, --help", "show this help"]] },
    {
      title: "Exit codes",
      rows: [["0", "all shown, or stopped by Ctrl-C or SIGTERM"], ["2", "bad command line"]],
    },
  ],
  examples: ["deno task process-demo", "deno task process-demo -- timeout terminate"],
});

function describe(outcome: ProcOutcome): string {
  return `${outcome.result} (code ${outcome.code}, signal ${outcome.signal}, pid ${outcome.pid}, ` +
    `${outcome.durationMs} ms)`;
}

/**
 * Runs the demo.
 *
 * @param args Command-line arguments (a leading `--` is dropped): showcase names, or `--help`.
 * @param options Injection points: output, clock, a stop signal.
 * @returns The exit code: 0, or 2 for a bad flag or showcase name.
 *
 * @example
 * ```ts
 * import { main } from "./demo.ts";
 * const code = await main(["--help"], { stdout: () => {} });
 * console.log(code); // 0
 * ```
 */
export function main(args: string[], options: MainOptions = {}): Promise<number> {
  return runCli(
    { name: "process-demo", usage: USAGE, options: {}, positionals: true, configure, run },
    args,
    options,
  );
}

function configure({ positionals }: Flags<Record<never, never>>): string[] {
  const names = positionals.length > 0 ? positionals : Object.keys(SHOWCASES);
  const unknown = names.find((name) => !Object.hasOwn(SHOWCASES, name));
  if (unknown !== undefined) throw new UsageError(`unknown showcase '${unknown}'`);
  return names;
}

async function run(names: string[], io: CliIo): Promise<number> {
  // SIGINT/SIGTERM: stop the current showcase's jobs (through the abort signal), skip the rest.
  using shutdown = new ShutdownSignal({ signal: io.signal });
  const signal = shutdown.signal;
  for (const name of names) {
    if (signal.aborted) break;
    const showcase = SHOWCASES[name]!;
    io.log(`== ${name}: ${showcase.summary}`);
    await showcase.run(signal, io.log);
  }
  if (signal.aborted) io.log("interrupted: jobs terminated");
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
