/**
 * `deno task demo`: the whole system in one command. Starts a bus on a free loopback port, two
 * schedulers and two producers (one periodic, one gaussian), submits a few command jobs with
 * `deno task submit` whose output comes back, prefixes every line with its source, and stops
 * everything on Ctrl-C or after `--duration` seconds, leaving no process behind.
 *
 * @module
 */

import {
  type CliIo,
  type Flags,
  formatUsage,
  integerFlag,
  type MainOptions,
  plural,
  runCli,
  secondsFlag,
} from "./cli/mod.ts";
import { Proc, type ProcOutcome, ShutdownSignal } from "./process/mod.ts";

const HERE = new URL("./", import.meta.url);
const BUS = new URL("bus/main.ts", HERE);
const SCHEDULER = new URL("scheduler/main.ts", HERE);
const PRODUCER = new URL("producer/main.ts", HERE);
const SUBMIT = new URL("producer/submit.ts", HERE);

/** The usage text printed by `--help` and after a bad flag. */
export const USAGE: string = formatUsage({
  command: "deno task demo",
  about: `Starts a bus, schedulers (which allow command jobs of sh) and two producers (one periodic,
one gaussian) on a free loopback port, submits three command jobs with deno task submit (render:
its output streamed live; check: fails with exit code 3; urgent: priority 0), and shows every
line, each prefixed by its source. Within a minute you see jobs flowing, evictions (an urgent job
taking the slot of a less urgent one) and timeouts (jobs running past the schedulers' -t).
Ctrl-C stops everything.`,
  sections: [{
    title: "Options",
    rows: [
      ["--duration S", "stop by itself after S seconds (default: run until Ctrl-C)"],
      ["--schedulers N", "how many schedulers (default 2)"],
      ["--slots N", "slots per scheduler (default 2)"],
      ["--timeout S", "job timeout of the schedulers, seconds (default 10)"],
      ["--period S", "mean seconds between jobs of each producer (default 1.5)"],
      ["-h, --help", "show this help"],
    ],
  }, {
    title: "Exit codes",
    rows: [
      ["0", "stopped by Ctrl-C, SIGTERM or --duration"],
      ["1", "a part did not start, or exited by itself"],
      ["2", "bad command line"],
    ],
  }],
  examples: ["deno task demo", "deno task demo -- --duration 60 --schedulers 3"],
});

const OPTIONS = {
  duration: { type: "string" },
  schedulers: { type: "string", default: "2" },
  slots: { type: "string", default: "2" },
  timeout: { type: "string", default: "10" },
  period: { type: "string", default: "1.5" },
} as const;

/** The parsed command line. */
interface Config {
  durationS: number | undefined;
  schedulers: number;
  slots: number;
  timeoutS: number;
  periodS: number;
}

function configure({ values }: Flags<typeof OPTIONS>): Config {
  const positive = { exclusive: true } as const;
  return {
    durationS: values.duration === undefined
      ? undefined
      : secondsFlag("--duration", values.duration, positive),
    schedulers: integerFlag("--schedulers", values.schedulers, { min: 1 }),
    slots: integerFlag("--slots", values.slots, { min: 1 }),
    timeoutS: secondsFlag("--timeout", values.timeout, positive),
    periodS: secondsFlag("--period", values.period, positive),
  };
}

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

/** One command job the demo submits: `deno task submit -- -p P --name LABEL FLAGS -- COMMAND`. */
interface DemoJob {
  label: string;
  priority: number;
  /** Seconds after the bus is up. */
  afterS: number;
  flags: string[];
  command: string[];
}

/** The demo's command jobs: output streamed live, a failure with its exit code, an urgent one. */
const JOBS: DemoJob[] = [{
  label: "render",
  priority: 3,
  afterS: 0,
  flags: ["--follow"],
  command: ["sh", "-c", "for i in 1 2 3; do echo rendering frame $i; sleep 1; done; echo done"],
}, {
  label: "check",
  priority: 5,
  afterS: 0.5,
  flags: ["--wait"],
  command: ["sh", "-c", "echo checking inputs; echo missing input.mp4 >&2; exit 3"],
}, {
  label: "urgent",
  priority: 0,
  afterS: 2.5,
  flags: ["--wait"],
  command: ["sh", "-c", "echo hotfix built; sleep 1; echo hotfix deployed"],
}];

const JOB_LABELS: ReadonlySet<string> = new Set(JOBS.map((job) => job.label));

/** How long the bus may take to say where it listens. */
const BUS_START_MS = 15_000;

/**
 * Runs the demo.
 *
 * @param args Command-line arguments (a leading `--` is dropped).
 * @param options Injection points: output, a stop signal.
 * @returns The exit code: 0 when stopped by Ctrl-C, SIGTERM or `--duration`; 1 if a part
 *   did not start or exited by itself; 2 for a bad flag.
 *
 * @example
 * ```ts
 * import { main } from "./demo.ts";
 * console.log(await main(["--help"], { stdout: () => {} })); // 0
 * ```
 */
export function main(args: string[], options: MainOptions = {}): Promise<number> {
  return runCli({ name: "demo", usage: USAGE, options: OPTIONS, configure, run }, args, options);
}

async function run(config: Config, io: CliIo): Promise<number> {
  // Ctrl-C, SIGTERM or --duration: we stop our parts ourselves, in order.
  const signals = [io.signal, durationSignal(config.durationS)].filter((s) => s !== undefined);
  using shutdown = new ShutdownSignal({ signal: AbortSignal.any(signals) });
  const color = Deno.stdout.isTerminal() && !Deno.noColor;
  const labels = [
    "bus",
    ...Array.from({ length: config.schedulers }, (_, i) => `sched-${i + 1}`),
    "periodic",
    "gauss",
    ...JOB_LABELS,
  ];
  const width = Math.max(...labels.map((label) => label.length));
  const parts: Part[] = [];
  const launch = launcher(parts, width, color, io);
  const say = (text: string): void =>
    io.out(`${prefixer("demo", width, color ? 1 : undefined)} ${text}`);

  try {
    // The bus takes any free port and says which: no port to find (and lose) beforehand.
    const { promise: listening, resolve } = Promise.withResolvers<string | undefined>();
    const bus = launch("bus", BUS, ["--port", "0", "--memory"], ["--allow-net"], (line) => {
      const url = /listening on (ws:\/\/[^/\s]+)\//.exec(line)?.[1];
      if (url) resolve(url);
    });
    const url = await first(listening, bus.proc.wait().then(() => undefined), shutdown.signal);
    if (url === undefined) {
      if (shutdown.signal.aborted) return 0;
      say("the bus did not come up; stopping");
      return 1;
    }
    say(
      `bus on ${url}; ${plural(config.schedulers, "scheduler")} with ${
        plural(config.slots, "slot")
      } and a ` +
        `${config.timeoutS} s timeout; 2 producers (priority 0 = most urgent, 10 = least)`,
    );
    say(
      config.durationS === undefined
        ? "Ctrl-C stops everything"
        : `stopping in ${config.durationS} s (or Ctrl-C)`,
    );
    launchClients(config, url, launch);
    submitJobs(url, launch, say, shutdown.signal);

    // Run until stopped, or until a part dies on its own (then stop the rest); jobs' submit
    // processes end by themselves.
    const died = Promise.race(
      parts.filter((part) => !JOB_LABELS.has(part.label))
        .map((part) => part.proc.wait().then(() => part)),
    );
    const ended = await Promise.race([died, shutdown.wait()]);
    if (ended) say(`${ended.label} exited unexpectedly; stopping the others`);
    else {
      say(
        "stopping: the submits and producers first, then schedulers (their jobs are " +
          "terminated), then the bus",
      );
    }
    return ended ? 1 : 0;
  } finally {
    await stopAll(parts, say);
  }
}

/** Starts one part of the demo as a child process whose lines are prefixed by its label. */
type Launch = (
  label: string,
  module: URL,
  args: string[],
  permissions: string[],
  onLine?: (line: string) => void,
) => Part;

/** A {@linkcode Launch} that adds each part it starts to `parts`. */
function launcher(parts: Part[], width: number, color: boolean, io: CliIo): Launch {
  return (label, module, args, permissions, onLine) => {
    const prefix = prefixer(label, width, color ? COLORS[parts.length % COLORS.length] : undefined);
    const proc = Proc.deno(module, {
      args,
      permissions,
      graceMs: 5000, // a scheduler drains its own jobs (2 s grace each) before it exits
      output: "lines",
      onLine: (line) => {
        io.out(`${prefix} ${line}`);
        onLine?.(line);
      },
    }).start();
    const part = { label, proc };
    parts.push(part);
    return part;
  };
}

/** Aborts after `durationS` seconds (`--duration`), if given. */
function durationSignal(durationS: number | undefined): AbortSignal | undefined {
  return durationS === undefined ? undefined : AbortSignal.timeout(durationS * 1000);
}

/** The bus's URL once it listens; undefined if it exits, the demo stops, or it takes too long. */
async function first(
  listening: Promise<string | undefined>,
  exited: Promise<undefined>,
  stop: AbortSignal,
): Promise<string | undefined> {
  const { promise: given, resolve } = Promise.withResolvers<undefined>();
  const giveUp = (): void => resolve(undefined);
  const timer = setTimeout(giveUp, BUS_START_MS);
  stop.addEventListener("abort", giveUp);
  if (stop.aborted) giveUp();
  try {
    return await Promise.race([listening, exited, given]);
  } finally {
    clearTimeout(timer);
    stop.removeEventListener("abort", giveUp);
  }
}

/** Starts the schedulers and the two producers on the bus at `url`. */
function launchClients(
  config: Config,
  url: string,
  launch: Launch,
): void {
  for (let i = 1; i <= config.schedulers; i++) {
    launch(`sched-${i}`, SCHEDULER, [
      ...["--url", url, "--name", `sched-${i}`],
      ...["-s", String(config.slots), "-t", String(config.timeoutS)],
      ...["--allow-command", "sh"],
    ], ["--allow-net", "--allow-run", "--allow-read", "--allow-env"]);
  }
  const period = String(config.periodS);
  launch("periodic", PRODUCER, ["--url", url, "--name", "periodic", "-p", period], [
    "--allow-net",
  ]);
  launch("gauss", PRODUCER, [
    ...["--url", url, "--name", "gauss", "-g"],
    ...["-p", period, "-s", String(config.periodS / 2)],
  ], ["--allow-net"]);
}

/**
 * Submits {@linkcode JOBS}, each after its delay unless the demo stops first, by running
 * `deno task submit` as a part; says how each one ended.
 */
function submitJobs(
  url: string,
  launch: Launch,
  say: (text: string) => void,
  stop: AbortSignal,
): void {
  const timers = JOBS.map((job) =>
    setTimeout(() => {
      if (stop.aborted) return;
      const flags = ["-p", String(job.priority), "--name", job.label, ...job.flags];
      say(`${job.label}: deno task submit -- ${flags.join(" ")} -- ${shellWords(job.command)}`);
      const part = launch(job.label, SUBMIT, [
        ...["--url", url, "--owner", "demo", ...flags, "--", ...job.command],
      ], ["--allow-net", "--allow-env=SCHED_OWNER,USER,SCHED_TOKEN", "--allow-read"]);
      part.proc.wait().then(({ code }) => {
        if (!stop.aborted) say(`${job.label}: submit exited with ${code} (${exitMeaning(code)})`);
      });
    }, job.afterS * 1000)
  );
  stop.addEventListener("abort", () => timers.forEach(clearTimeout), { once: true });
}

/** What `submit --wait`'s exit code says about the job. */
function exitMeaning(code: number | null): string {
  if (code === 0) return "the job succeeded";
  if (code === 124) return "the job timed out";
  if (code === 125) return "the job could not start";
  if (code === 126) return "the job was cancelled or evicted";
  if (code === 130) return "stopped waiting: Ctrl-C";
  if (code !== null && code > 128) return `the job was killed by signal ${code - 128}`;
  return "the job's exit code";
}

/** `argv` as one would type it in a shell (single quotes where needed). */
function shellWords(argv: string[]): string {
  return argv.map((arg) => /^[\w./=:-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`)
    .join(" ");
}

/**
 * Stops the parts in order: the jobs' submit processes (their jobs are stopped with their
 * schedulers), producers, schedulers, then the bus; each drains on SIGTERM.
 */
async function stopAll(parts: Part[], say: (text: string) => void): Promise<void> {
  await Promise.all(
    parts.filter((part) => JOB_LABELS.has(part.label)).map((part) => part.proc.terminate()),
  );
  const stages = [
    parts.filter((part) => part.label === "periodic" || part.label === "gauss"),
    parts.filter((part) => part.label.startsWith("sched-")),
    parts.filter((part) => part.label === "bus"),
  ];
  for (const stage of stages) {
    const outcomes: ProcOutcome[] = await Promise.all(stage.map((part) => part.proc.terminate()));
    outcomes.forEach((outcome, i) => {
      if (outcome.code !== 0) {
        const label = stage[i]?.label ?? "a part";
        say(
          `${label} ended: ${outcome.result} (code ${outcome.code}, signal ${outcome.signal})`,
        );
      }
    });
  }
  say("all stopped");
}

if (import.meta.main) Deno.exit(await main(Deno.args));
