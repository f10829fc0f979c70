/**
 * `deno task jobs`: the jobs on the bus, like Slurm's `squeue` / `scontrol` / `scancel`: list
 * them, show one (spec, result, output tails, history), cancel one of the owner's, change its
 * priority, or wait for its end.
 *
 * @module
 */

import {
  type CliIo,
  CREDENTIAL_FLAGS,
  CREDENTIAL_USAGE_ROWS,
  type Credentials,
  type CredentialValues,
  type Flags,
  formatUsage,
  integerFlag,
  type MainOptions,
  readCredentials,
  runCli,
  seconds,
  secondsFlag,
  stamp,
  UsageError,
  wsUrlListFlag,
  wsUrlUsageRow,
} from "../cli/mod.ts";
import { ShutdownSignal } from "../process/shutdown_signal.ts";
import {
  BUS_JOB_STATES,
  type BusJobState,
  type JobDetails,
  type JobSummary,
} from "../bus/protocol.ts";
import { JobClientRefusedError, JobOpError } from "./errors.ts";
import {
  DEFAULT_URL,
  describeEnd,
  EXIT,
  openJobClient,
  readEnv,
  reportIo,
  resolveOwner,
  shellQuote,
  splitLines,
  waitAndReport,
} from "./job_exit.ts";

/** The usage text printed by `--help` and after a bad flag. */
export const USAGE: string = formatUsage({
  command: "deno task jobs",
  args: "-- list | show ID | cancel ID | priority ID P | wait ID  [options]",
  about: `The jobs on the bus. list: a table like squeue (waiting jobs first, in the order they will
run; then running; then finished, newest first). show: one job's spec, result, output tails and
history. cancel, priority: the owner's own jobs. wait: as submit --wait.`,
  sections: [{
    title: "Options",
    rows: [
      [
        "--state S",
        `list: only jobs in state S (repeatable, or S1,S2), one of:\n${wrapStates()}`,
      ],
      ["--name TEXT", "list: only jobs whose name or id contains TEXT"],
      [
        "--owner NAME",
        "list: only NAME's jobs; cancel, priority: act as NAME\n(default $SCHED_OWNER, else $USER, else user)",
      ],
      ["--limit N", "list: at most N jobs, 1..10000 (default 100)"],
      ["--json", "list, show: print the bus's answer as JSON"],
      wsUrlUsageRow(DEFAULT_URL),
      ["--connect-timeout S", "give up when the bus is unreachable this long (default 10)"],
      ...CREDENTIAL_USAGE_ROWS,
      ["-h, --help", "show this help and exit"],
    ],
  }, {
    title: "Exit codes",
    rows: [
      ["0", "done (wait: the job succeeded)"],
      ["1", "the bus refused: unknown job, not yours, already finished, not waiting"],
      ["2", "bad command line"],
      ["4", "the bus was unreachable within --connect-timeout, or refused us (token, TLS)"],
      [
        "N",
        "wait: the job's exit code, 124 timed out, 125 could not start,\n126 cancelled or evicted, 130 Ctrl-C (as submit --wait)",
      ],
    ],
  }],
  examples: [
    "deno task jobs -- list",
    "deno task jobs -- list --state queued --state started --name render",
    "deno task jobs -- show j-0123456789ab",
    "deno task jobs -- priority j-0123456789ab 0",
    "deno task jobs -- cancel j-0123456789ab",
    "deno task jobs -- wait j-0123456789ab",
  ],
});

/** The job states, six a line, for the usage. */
function wrapStates(): string {
  const lines: string[] = [];
  for (let i = 0; i < BUS_JOB_STATES.length; i += 6) {
    lines.push(BUS_JOB_STATES.slice(i, i + 6).join(", "));
  }
  return lines.join(",\n");
}

/** What `main` takes besides the harness's injection points. */
export interface JobsMainOptions extends MainOptions {
  /**
   * Reads an environment variable (the owner's default, `SCHED_TOKEN`).
   * @default {readEnv}
   */
  env?: ((name: string) => string | undefined) | undefined;
}

type Action =
  | { op: "list"; states: BusJobState[]; name?: string; owner?: string; limit?: number }
  | { op: "show"; id: string }
  | { op: "cancel"; id: string }
  | { op: "priority"; id: string; priority: number }
  | { op: "wait"; id: string };

interface Config {
  action: Action;
  /** `--url` as one comma-separated text (for a suggested command line). */
  url: string;
  urls: string[];
  owner: string;
  /** `--owner` as given. */
  ownerFlag: string | undefined;
  json: boolean;
  connectTimeoutS: number;
  credentials: Credentials;
  /** `--token-file` and `--ca` as given. */
  credentialFlags: CredentialValues;
}

const OPTIONS = {
  state: { type: "string", multiple: true },
  name: { type: "string" },
  owner: { type: "string" },
  limit: { type: "string" },
  json: { type: "boolean", default: false },
  url: { type: "string", multiple: true, default: [DEFAULT_URL] as string[] },
  "connect-timeout": { type: "string", default: "10" },
  ...CREDENTIAL_FLAGS,
} as const;

/** How many arguments each subcommand takes after its name. */
const ARITY: Record<Action["op"], number> = { list: 0, show: 1, cancel: 1, priority: 2, wait: 1 };

/**
 * Runs the jobs CLI.
 *
 * @param args The command-line arguments (a leading `--` from `deno task` is dropped).
 * @param options See {@linkcode JobsMainOptions}.
 * @returns The exit code (see {@linkcode USAGE}, "Exit codes").
 *
 * @example
 * ```ts
 * import { main } from "./jobs.ts";
 * const err: string[] = [];
 * console.log(await main(["--", "priority", "j-1", "11"], { stderr: (l) => err.push(l) })); // 2
 * console.log(err[0]); // "jobs: priority must be an integer 0..10, got '11'"
 * ```
 */
export function main(args: string[], options: JobsMainOptions = {}): Promise<number> {
  const env = options.env ?? readEnv;
  return runCli(
    {
      name: "jobs",
      usage: USAGE,
      options: OPTIONS,
      positionals: true,
      configure: (flags) => configure(flags, env),
      run,
    },
    args,
    options,
  );
}

function configure(
  { values, positionals }: Flags<typeof OPTIONS>,
  env: (name: string) => string | undefined,
): Config {
  const [op, ...rest] = positionals;
  if (op === undefined) {
    throw new UsageError("say what: list, show ID, cancel ID, priority ID P or wait ID");
  }
  if (!(op in ARITY)) {
    throw new UsageError(`unknown command '${op}' (list, show, cancel, priority or wait)`);
  }
  const arity = ARITY[op as Action["op"]];
  if (rest.length !== arity) {
    const what = ["", "ID", "ID P"][arity];
    throw new UsageError(
      `${op} takes ${what ? what : "no arguments"}, got ${
        rest.length ? `'${rest.join(" ")}'` : "none"
      }`,
    );
  }
  if (op !== "list") {
    for (const flag of ["state", "name", "limit"] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} goes with list only`);
    }
  }
  if (values.json && op !== "list" && op !== "show") {
    throw new UsageError("--json goes with list or show");
  }
  const id = rest[0] ?? "";
  let action: Action;
  switch (op) {
    case "list":
      action = listAction(values);
      break;
    case "priority":
      action = { op, id, priority: integerFlag("priority", rest[1] ?? "", { max: 10 }) };
      break;
    default:
      action = { op: op as "show" | "cancel" | "wait", id };
  }
  const urls = wsUrlListFlag("--url", values.url);
  return {
    action,
    url: urls.join(","),
    urls,
    credentials: readCredentials(values, urls, { env }),
    credentialFlags: { "token-file": values["token-file"], ca: values.ca },
    owner: resolveOwner(values.owner, env),
    ownerFlag: values.owner,
    json: values.json,
    connectTimeoutS: secondsFlag("--connect-timeout", values["connect-timeout"], {
      exclusive: true,
    }),
  };
}

function listAction(values: Flags<typeof OPTIONS>["values"]): Action {
  const states = (values.state ?? []).flatMap((s) => s.split(",")).map((s) => s.trim());
  for (const state of states) {
    if (!BUS_JOB_STATES.includes(state as BusJobState)) {
      throw new UsageError(`--state must be one of ${BUS_JOB_STATES.join(", ")}, got '${state}'`);
    }
  }
  const action: Action = { op: "list", states: states as BusJobState[] };
  if (values.name !== undefined) action.name = values.name;
  if (values.owner !== undefined) action.owner = values.owner;
  if (values.limit !== undefined) {
    action.limit = integerFlag("--limit", values.limit, { min: 1, max: 10_000 });
  }
  return action;
}

async function run(config: Config, cli: CliIo): Promise<number> {
  using shutdown = new ShutdownSignal({ signal: cli.signal });
  const stop = shutdown.signal;
  const io = reportIo(cli, "jobs", config);
  const opened = await openJobClient(config, io, stop);
  if (typeof opened === "number") return opened;
  await using client = opened;
  const action = config.action;
  try {
    switch (action.op) {
      case "list": {
        const { op: _, ...filters } = action;
        const list = await client.list(filters);
        if (config.json) io.out(JSON.stringify(list));
        else {
          for (const line of formatJobTable(list.jobs, cli.clock.now())) io.out(line);
          if (list.total > list.jobs.length) {
            io.note(`${list.jobs.length} of ${list.total} jobs shown (--limit N for more)`);
          }
        }
        return EXIT.ok;
      }
      case "show": {
        const job = await client.show(action.id);
        const lines = config.json ? [JSON.stringify(job)] : formatJobDetails(job);
        for (const line of lines) io.out(line);
        return EXIT.ok;
      }
      case "cancel":
        await client.cancel(action.id);
        io.out(`${action.id}: cancel sent`);
        return EXIT.ok;
      case "priority":
        await client.setPriority(action.id, action.priority);
        io.out(`${action.id}: priority ${action.priority}`);
        return EXIT.ok;
      case "wait":
        return await waitAndReport(client, action.id, io, stop);
    }
  } catch (error) {
    if (error instanceof JobClientRefusedError) {
      io.note(`the bus refused us: ${error.message}`);
      return EXIT.unreachable;
    }
    if (!(error instanceof JobOpError)) throw error;
    io.note(`${error.id ? `${error.id}: ` : ""}${error.reason}`);
    return EXIT.failed;
  }
}

/**
 * Lays out jobs as a table like `squeue`: ID, NAME, PRIO, STATE, SCHEDULER, WAITED, RAN (and
 * WHY, the reason a job waits with nothing to run it, when one does).
 *
 * @param jobs The jobs, in the bus's order.
 * @param now The time, epoch ms (for jobs not finished).
 * @returns The lines: a header, then one per job.
 * @example
 * ```ts
 * import { formatJobTable } from "./jobs.ts";
 * const [header, row] = formatJobTable([{ id: "j-1", priority: 2, state: "started",
 *   owner: "ada", submittedAt: 0, startedAt: 1500, attempts: 1 }], 4000);
 * console.log(header?.split(/ +/).join(" ")); // ID NAME PRIO STATE SCHEDULER WAITED RAN
 * console.log(row?.split(/ +/).join(" ")); // j-1 - 2 started - 1.5s 2.5s
 * ```
 */
export function formatJobTable(jobs: readonly JobSummary[], now: number): string[] {
  const why = jobs.some((job) => job.waiting);
  const header = [
    "ID",
    "NAME",
    "PRIO",
    "STATE",
    "SCHEDULER",
    "WAITED",
    "RAN",
    ...(why ? ["WHY"] : []),
  ];
  const rows = jobs.map((job) => {
    const waitedUntil = job.startedAt ?? job.endedAt ?? now;
    const ran = job.startedAt === undefined ? "-" : short((job.endedAt ?? now) - job.startedAt);
    const row = [
      job.id,
      job.name ?? "-",
      String(job.priority),
      job.state,
      job.scheduler ?? "-",
      short(waitedUntil - job.submittedAt),
      ran,
    ];
    if (why) row.push(job.waiting ?? "");
    return row;
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [header, ...rows].map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)).join("  ")
      .trimEnd()
  );
}

/** A duration in a table cell: `1.5s`, `2m03s`, `1h02m`. */
function short(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/**
 * Lays out one job's details for `jobs show`: its spec, state, result, output tails and
 * history (times as local `HH:MM:SS.mmm`, durations in seconds).
 *
 * @param job The job, as the bus's `job_info` gives it.
 * @returns The lines.
 * @example
 * ```ts
 * import { formatJobDetails } from "./jobs.ts";
 * const lines = formatJobDetails({ id: "j-1", priority: 2, state: "queued", owner: "ada",
 *   submittedAt: 0, attempts: 0, payload: { priority: 2, command: ["echo", "a b"] },
 *   history: [] });
 * console.log(lines.find((l) => l.startsWith("command"))); // command    echo 'a b'
 * ```
 */
export function formatJobDetails(job: JobDetails): string[] {
  const lines: string[] = [];
  const row = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== "") lines.push(`${key.padEnd(10)} ${value}`);
  };
  const p = job.payload as Record<string, unknown>;
  row("id", job.id);
  row("name", job.name);
  row("owner", job.owner);
  row(
    "state",
    job.state + (job.reason ? ` (${job.reason})` : "") + (job.waiting ? ` — ${job.waiting}` : ""),
  );
  row("priority", String(job.priority));
  row("scheduler", job.scheduler);
  row("attempts", String(job.attempts));
  row("submitted", stamp(job.submittedAt));
  if (job.startedAt !== undefined) {
    row(
      "started",
      `${stamp(job.startedAt)} (waited ${seconds(job.startedAt - job.submittedAt, 3)})`,
    );
  }
  if (job.endedAt !== undefined) {
    const ran = job.startedAt === undefined
      ? ""
      : ` (ran ${seconds(job.endedAt - job.startedAt, 3)})`;
    row("ended", `${stamp(job.endedAt)}${ran}`);
  }
  if (Array.isArray(p.command)) row("command", (p.command as string[]).map(shellQuote).join(" "));
  else if (p.runtime !== undefined) row("runtime", `${p.runtime} s (test job)`);
  row("cwd", p.cwd as string | undefined);
  if (p.env) {
    row(
      "env",
      Object.entries(p.env as object).map(([k, v]) => `${k}=${shellQuote(String(v))}`).join(" "),
    );
  }
  if (p.requires) {
    row(
      "requires",
      Object.entries(p.requires as object).map(([k, v]) => `${k}=${v}`).join(", "),
    );
  }
  if (p.timeout !== undefined) row("timeout", `${p.timeout} s`);
  if (p.grace !== undefined) row("grace", `${p.grace} s`);
  if (p.retries !== undefined) row("retries", String(p.retries));
  if (p.follow) row("follow", "yes");
  if (job.result) {
    row(
      "result",
      describeEnd({ id: job.id, state: job.state, result: job.result }).slice(job.id.length + 1),
    );
    for (const stream of ["stdout", "stderr"] as const) {
      const tail = job.result[`${stream}Tail`];
      const file = job.result[`${stream}File`];
      if (file) row(`${stream} file`, file);
      if (!tail) continue;
      const cut = job.result[`${stream}Truncated`] ? " (only the end)" : "";
      lines.push(`${stream}${cut}:`);
      for (const line of splitLines(tail)) lines.push(`  ${line}`);
    }
  }
  const history = Array.isArray(job.history) ? job.history : [];
  if (history.length) lines.push("history:");
  for (const h of history) {
    const cells = [stamp(h.at), h.state.padEnd(9), h.scheduler ?? "", h.reason ?? ""];
    lines.push(`  ${cells.join("  ").trimEnd()}`);
  }
  return lines;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
