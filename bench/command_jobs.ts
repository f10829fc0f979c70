// deno-lint-ignore-file no-console
/**
 * Short command jobs through the whole system (issue 9, §7): `--jobs` (1,000) `/bin/true`
 * command jobs through a real bus and one scheduler with `--slots` (8) slots, submitted with
 * `deno task submit -- --file … --wait` (a process of its own, timed from spawn to exit),
 * against `seq N | xargs -P 8 -n 1 /bin/true` in the same round. Goal: at least 0.5× xargs'
 * rate. Then a probe on the idle cluster: one job at a time from a `JobClient` in this process,
 * submit → `started` event (the scheduler reports it once the process is spawned), p50 and p99
 * (goals 5 ms and 15 ms).
 *
 * Run: `deno run -A bench/command_jobs.ts [--jobs N] [--slots N] [--rounds N] [--probe N]`.
 * It needs a scheduler that runs command jobs (`--allow-command`).
 *
 * @module
 */

import { type Flags, integerFlag, type MainOptions, runCli } from "../cli/mod.ts";
import { Proc } from "../process/proc.ts";
import { JobClient, newJobId } from "../producer/job_client.ts";

const ROOT = new URL("../", import.meta.url);
const OPTIONS = {
  jobs: { type: "string", default: "1000" },
  slots: { type: "string", default: "8" },
  rounds: { type: "string", default: "3" },
  probe: { type: "string", default: "200" },
} as const;

interface Config {
  jobs: number;
  slots: number;
  rounds: number;
  probe: number;
}

/** Runs the bench; returns 0, or 1 when a run did not end well. */
export function main(args: string[], options: MainOptions = {}): Promise<number> {
  return runCli(
    {
      name: "command_jobs",
      usage:
        "Usage: deno run -A bench/command_jobs.ts [--jobs N] [--slots N] [--rounds N] [--probe N]",
      options: OPTIONS,
      configure: ({ values }: Flags<typeof OPTIONS>): Config => ({
        jobs: integerFlag("--jobs", values.jobs, { min: 1 }),
        slots: integerFlag("--slots", values.slots, { min: 1 }),
        rounds: integerFlag("--rounds", values.rounds, { min: 1 }),
        probe: integerFlag("--probe", values.probe),
      }),
      run,
    },
    args,
    options,
  );
}

async function run(config: Config): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "command_jobs_" });
  const file = `${dir}/jobs.jsonl`;
  await Deno.writeTextFile(file, '{"command":["/bin/true"]}\n'.repeat(config.jobs));
  console.log(
    `${config.jobs} /bin/true jobs, ${config.slots} at a time; ${config.rounds} rounds ` +
      `(Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores)`,
  );
  let failures = 0;
  try {
    for (let round = 1; round <= config.rounds; round++) {
      const cpu0 = childrenCpuMs();
      const xargsS = await timeXargs(config);
      const cpu1 = childrenCpuMs();
      const probe = round === 1 ? config.probe : 0;
      const ours = await timeOurs(config, file, probe);
      const cpu2 = childrenCpuMs();
      if (ours.code !== 0) failures++;
      const ratio = xargsS / ours.seconds;
      console.log(
        `round ${round}: xargs ${xargsS.toFixed(2)} s (${rate(config.jobs, xargsS)}/s); ` +
          `submit --file --wait ${ours.seconds.toFixed(2)} s (${
            rate(config.jobs, ours.seconds)
          }/s, ` +
          `exit ${ours.code}); ours/xargs rate ${ratio.toFixed(2)}× (goal >= 0.5×)`,
      );
      if (cpu0 !== undefined && cpu1 !== undefined && cpu2 !== undefined) {
        const perJob = (ms: number): string => (ms / config.jobs).toFixed(2);
        console.log(
          `  CPU per job (user + sys, every process): xargs ${perJob(cpu1 - cpu0)} ms; ours ${
            perJob(cpu2 - cpu1)
          } ms (bus, scheduler, submit and the jobs, with their startups${
            probe > 0 ? ` and the ${probe} probe jobs` : ""
          })`,
        );
      }
      if (ours.probe) {
        const { p50, p99, max } = ours.probe;
        console.log(
          `  idle probe, submit → started, ${config.probe} jobs one at a time: p50 ${
            p50.toFixed(2)
          } ms, ` +
            `p99 ${p99.toFixed(2)} ms, max ${max.toFixed(2)} ms (goals 5 ms, 15 ms)`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return failures ? 1 : 0;
}

/**
 * The CPU time of this process's reaped children (and theirs), user + sys, in ms, from
 * `/proc/self/stat` (Linux); `undefined` elsewhere.
 */
function childrenCpuMs(): number | undefined {
  try {
    const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]?.split(" ") ?? [];
    // after "pid (comm) ": state is field 0, cutime 13, cstime 14 (clock ticks, 100 per second)
    const ticks = Number(fields[13]) + Number(fields[14]);
    return Number.isFinite(ticks) ? ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}

function rate(jobs: number, s: number): string {
  return Math.round(jobs / s).toLocaleString("en");
}

async function timeXargs(config: Config): Promise<number> {
  const script = `seq ${config.jobs} | xargs -P ${config.slots} -n 1 /bin/true`;
  const t0 = performance.now();
  const status = await new Deno.Command("sh", { args: ["-c", script] }).output();
  const s = (performance.now() - t0) / 1000;
  if (!status.success) throw new Error(`xargs failed: ${status.code}`);
  return s;
}

interface Ours {
  seconds: number;
  code: number;
  probe?: { p50: number; p99: number; max: number };
}

/** A fresh bus and scheduler; `submit --file --wait` timed; then the idle probe. */
async function timeOurs(config: Config, file: string, probe: number): Promise<Ours> {
  const busLine = Promise.withResolvers<string>();
  await using _bus = task("bus", ["--port", "0", "--memory"], {
    onLine: (line) => {
      const match = /listening on (ws:\/\/\S+?)\/? /.exec(line);
      if (match?.[1]) busLine.resolve(match[1]);
    },
  });
  const url = await busLine.promise;
  const registered = Promise.withResolvers<void>();
  const slots = String(config.slots);
  const schedulerArgs = [
    "--url",
    url,
    "-s",
    slots,
    "--name",
    "bench",
    "--allow-command",
    "/bin/true",
  ];
  await using scheduler = task("scheduler", schedulerArgs, {
    onLine: (line) => {
      if (/registered/.test(line)) registered.resolve();
    },
  });
  void scheduler.wait().then((outcome) =>
    registered.reject(new Error(`the scheduler exited: ${outcome.result} ${outcome.code}`))
  );
  await registered.promise;
  const t0 = performance.now();
  const submit = await task("submit", ["--url", url, "--file", file, "--wait"], {
    onLine: () => {},
  }).wait();
  const seconds = (performance.now() - t0) / 1000;
  const ours: Ours = { seconds, code: submit.code ?? -1 };
  if (probe > 0) ours.probe = await idleProbe(url, probe);
  return ours;
}

/** `deno task NAME -- ARGS` in the repository, as a user runs it; its lines to `onLine`. */
function task(name: string, args: string[], options: { onLine: (line: string) => void }): Proc {
  return new Proc(Deno.execPath(), {
    args: ["task", "-q", name, "--", ...args],
    cwd: ROOT,
    output: "lines",
    onLine: options.onLine,
    graceMs: 5000,
  }).start();
}

/** One job at a time: submit → its `started` event, in milliseconds. */
async function idleProbe(
  url: string,
  n: number,
): Promise<{ p50: number; p99: number; max: number }> {
  await using client = new JobClient(url, { owner: "probe" });
  client.start();
  await client.ready(AbortSignal.timeout(10_000));
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = newJobId();
    const started = Promise.withResolvers<number>();
    const onJob = (event: { id: string; state: string }): void => {
      if (event.id === id && event.state === "started") started.resolve(performance.now());
    };
    client.addEventListener("job", onJob);
    const t0 = performance.now();
    await client.submit({ priority: 5, command: ["/bin/true"] }, { id });
    const end = await client.wait(id);
    if (end.state !== "succeeded") throw new Error(`probe job ${id} ${end.state}`);
    samples.push(await started.promise - t0);
    client.removeEventListener("job", onJob);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number): number =>
    samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), max: samples.at(-1) ?? NaN };
}

if (import.meta.main) Deno.exit(await main(Deno.args));
