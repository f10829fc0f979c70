/**
 * `deno task submit`: submits a command job (or a file of them) to the bus, prints its id, and
 * with `--wait` or `--follow` waits for its end and exits with its exit code.
 *
 * @module
 */

import { resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  type CliIo,
  CREDENTIAL_FLAGS,
  CREDENTIAL_USAGE_ROWS,
  type Credentials,
  type CredentialValues,
  type Flags,
  formatUsage,
  type MainOptions,
  plural,
  readCredentials,
  runCli,
  secondsFlag,
  UsageError,
  wsUrlListFlag,
  wsUrlUsageRow,
} from "../cli/mod.ts";
import { ShutdownSignal } from "../process/shutdown_signal.ts";
import { type CommandSpec, validateCommandSpec } from "../scheduler/command_spec.ts";
import { JobClient, type JobEnd, JobOutputEvent, newJobId } from "./job_client.ts";
import { JobClientRefusedError } from "./errors.ts";
import { readJobFile } from "./job_file.ts";
import {
  DEFAULT_URL,
  describeEnd,
  EXIT,
  jobsCommand,
  openJobClient,
  readEnv,
  type ReportIo,
  reportIo,
  resolveOwner,
  shellQuote,
  stateInWords,
  waitAndReport,
} from "./job_exit.ts";

/** The priority of a job submitted without `-p`. */
export const DEFAULT_PRIORITY = 5;

/** The usage text printed by `--help` and after a bad flag. */
export const USAGE: string = formatUsage({
  command: "deno task submit",
  args: "-- [options] -- CMD [ARG...]    (or: -- [options] --file jobs.jsonl)",
  about: `Submits a command job to the bus and prints its id (j- and 12 hex digits). The command
runs as an argv, without a shell (use sh -c '...' for one), on a scheduler that allows it
(scheduler --allow-command). The first -- is deno task's; the second starts the command.`,
  sections: [{
    title: "Options",
    rows: [
      ["-p, --priority PRIO", `0 (most urgent) .. 10 (default ${DEFAULT_PRIORITY})`],
      ["--name LABEL", "a label shown in lists"],
      ["--timeout S", "running time allowed, seconds (the scheduler's -t wins if smaller)"],
      ["--grace S", "seconds between SIGTERM and SIGKILL when the job is stopped"],
      ["--cwd DIR", "working directory (a relative one is made absolute from here)"],
      ["--env NAME=VALUE", "add to the job's environment (repeatable)"],
      ["--require KEY=VALUE", "run only on a scheduler with this label (repeatable)"],
      ["--retries N", "run again after a failure or timeout, up to N times (default 0)"],
      ["--wait", "wait for the end, print the output tails, exit with the job's code"],
      ["--follow", "stream the output live while the job runs, then exit as --wait"],
      [
        "--file FILE",
        "submit one job per line of FILE (JSON, the fields of a payload;\nfields a line leaves out come from the options); prints the ids",
      ],
      wsUrlUsageRow(DEFAULT_URL),
      ["--owner NAME", "whose job it is (default $SCHED_OWNER, else $USER, else user)"],
      ["--connect-timeout S", "give up when the bus is unreachable this long (default 10)"],
      ...CREDENTIAL_USAGE_ROWS,
      ["-h, --help", "show this help and exit"],
    ],
  }, {
    title: "Exit codes",
    rows: [
      ["0", "submitted; with --wait or --follow: the job succeeded"],
      ["N", "with --wait or --follow: the job's own exit code (the others are submit's)"],
      ["128+N", "with --wait or --follow: the job was killed by signal N"],
      ["1", "--file --wait: some job did not succeed (or a job failed without a code)"],
      ["2", "bad command line, or a bad line in --file (nothing is sent)"],
      ["3", "the bus rejected the job (the reason is printed)"],
      ["4", "the bus was unreachable within --connect-timeout, or refused us (token, TLS)"],
      ["124", "the job timed out"],
      ["125", "the job could not start (no such executable or cwd, permission denied)"],
      ["126", "the job was cancelled or evicted"],
      ["130", "Ctrl-C while waiting: the job keeps running"],
    ],
  }],
  examples: [
    "deno task submit -- -- echo hello",
    "deno task submit -- -p 1 --name render --wait -- sh -c 'echo hi; exit 3'",
    "deno task submit -- --follow --timeout 60 --cwd . -- python3 train.py --epochs 3",
    "deno task submit -- --require gpu=a100 --retries 2 -- /opt/render/run.sh",
    "deno task submit -- --file jobs.jsonl --wait",
  ],
});

/** What `main` takes besides the harness's injection points. */
export interface SubmitMainOptions extends MainOptions {
  /**
   * Reads an environment variable (the owner's default, `SCHED_TOKEN`).
   * @default {readEnv}
   */
  env?: ((name: string) => string | undefined) | undefined;
  /**
   * The directory a relative `--cwd` (or a file's) is resolved from.
   * @default {Deno.cwd()}
   */
  cwd?: string | undefined;
  /**
   * How often, at most, `--file --wait` prints its progress line, in milliseconds.
   * @default {1000}
   */
  progressMs?: number | undefined;
}

/** The parsed command line. */
interface Config {
  /** `--url` as one comma-separated text (for a suggested command line). */
  url: string;
  urls: string[];
  owner: string;
  /** `--owner` as given. */
  ownerFlag: string | undefined;
  connectTimeoutS: number;
  wait: boolean;
  follow: boolean;
  /** One job, or the options that fill in a file's lines. */
  spec: Record<string, unknown>;
  file?: string | undefined;
  base: string;
  progressMs: number;
  credentials: Credentials;
  /** `--token-file` and `--ca` as given. */
  credentialFlags: CredentialValues;
}

const OPTIONS = {
  priority: { type: "string", short: "p" },
  name: { type: "string" },
  timeout: { type: "string" },
  grace: { type: "string" },
  cwd: { type: "string" },
  env: { type: "string", multiple: true },
  require: { type: "string", multiple: true },
  retries: { type: "string" },
  wait: { type: "boolean", default: false },
  follow: { type: "boolean", default: false },
  file: { type: "string" },
  url: { type: "string", multiple: true, default: [DEFAULT_URL] as string[] },
  owner: { type: "string" },
  "connect-timeout": { type: "string", default: "10" },
  ...CREDENTIAL_FLAGS,
} as const;

/**
 * Runs the submit CLI.
 *
 * @param args The command-line arguments: options, `--`, the command (a leading `--` from
 *   `deno task` is dropped).
 * @param options See {@linkcode SubmitMainOptions}.
 * @returns The exit code (see {@linkcode USAGE}, "Exit codes").
 *
 * @example
 * ```ts
 * import { main } from "./submit.ts";
 * const err: string[] = [];
 * console.log(await main(["--", "-p", "11", "--", "true"], { stderr: (l) => err.push(l) })); // 2
 * console.log(err[0]); // "submit: -p/--priority must be an integer 0..10, got 11"
 * ```
 */
export function main(args: string[], options: SubmitMainOptions = {}): Promise<number> {
  const rest = args[0] === "--" ? args.slice(1) : args;
  const split = rest.indexOf("--");
  const flags = split < 0 ? rest : rest.slice(0, split);
  const command = split < 0 ? [] : rest.slice(split + 1);
  const env = options.env ?? readEnv;
  const base = options.cwd ?? Deno.cwd();
  const progressMs = options.progressMs ?? 1000;
  const misplaced = misplacedOption(flags);
  return runCli(
    {
      name: "submit",
      usage: USAGE,
      options: OPTIONS,
      positionals: true,
      configure: (parsed) => {
        if (misplaced !== undefined) {
          throw new UsageError(
            `unknown option '${misplaced.option}': put the command after a second --, e.g. ` +
              "deno task submit -- -p 3 -- sh -c '…'",
          );
        }
        return configure(parsed, [...parsed.positionals, ...command], env, base, progressMs);
      },
      run,
    },
    misplaced === undefined ? flags : flags.slice(0, misplaced.commandAt),
    options,
  );
}

/**
 * An unknown option after the first word that is no flag: the command's own option, as in
 * `deno task submit -- sh -c 'echo hi'` (the second `--` forgotten). The flags before the
 * command are still read (so `--help` and their errors come first).
 */
function misplacedOption(
  args: readonly string[],
): { option: string; commandAt: number } | undefined {
  const known = new Set(["help", ...Object.keys(OPTIONS)]);
  const { tokens } = parseArgs({
    args: [...args],
    options: { ...OPTIONS, help: { type: "boolean", short: "h" } },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const first = tokens.find((token) => token.kind === "positional");
  if (first === undefined) return undefined;
  const unknown = tokens.find((token) =>
    token.kind === "option" && token.index > first.index && !known.has(token.name)
  );
  return unknown?.kind === "option"
    ? { option: unknown.rawName, commandAt: first.index }
    : undefined;
}

function configure(
  { values }: Flags<typeof OPTIONS>,
  command: string[],
  env: (name: string) => string | undefined,
  base: string,
  progressMs: number,
): Config {
  if (values.wait && values.follow) {
    throw new UsageError("--wait and --follow do not go together (--follow waits as well)");
  }
  if (values.file !== undefined && command.length > 0) {
    throw new UsageError(`--file takes no command, got '${command.join(" ")}'`);
  }
  if (values.file !== undefined && values.follow) {
    throw new UsageError("--follow streams one job's output: not with --file (use --wait)");
  }
  if (values.file === undefined && command.length === 0) {
    throw new UsageError(
      "no command: put it after --, as in: deno task submit -- -p 1 -- sh -c 'echo hi'",
    );
  }
  const owner = resolveOwner(values.owner, env);
  // deno-lint-ignore no-control-regex
  if (owner.length > 128 || owner === "" || /[\u0000-\u001f\u007f]/.test(owner)) {
    throw new UsageError(`--owner must be 1..128 printable characters, got '${owner}'`);
  }
  const spec = specOfFlags(values, base);
  if (values.follow) spec.follow = true;
  const check = validateCommandSpec({ ...spec, command: values.file ? ["true"] : command });
  if (!check.ok) throw new UsageError(inFlagWords(check.reason));
  if (values.file === undefined) spec.command = command;
  const urls = wsUrlListFlag("--url", values.url);
  return {
    url: urls.join(","),
    urls,
    credentials: readCredentials(values, urls, { env }),
    credentialFlags: { "token-file": values["token-file"], ca: values.ca },
    owner,
    ownerFlag: values.owner,
    connectTimeoutS: secondsFlag("--connect-timeout", values["connect-timeout"], {
      exclusive: true,
    }),
    wait: values.wait || values.follow,
    follow: values.follow,
    spec,
    file: values.file,
    base,
    progressMs,
  };
}

/** The payload fields the flags give (validated afterwards by `validateCommandSpec`). */
function specOfFlags(
  values: Flags<typeof OPTIONS>["values"],
  base: string,
): Record<string, unknown> {
  const spec: Record<string, unknown> = {
    priority: values.priority === undefined
      ? DEFAULT_PRIORITY
      : numberFlag("-p/--priority", values.priority),
  };
  if (values.name !== undefined) spec.name = values.name;
  if (values.timeout !== undefined) spec.timeout = numberFlag("--timeout", values.timeout);
  if (values.grace !== undefined) spec.grace = numberFlag("--grace", values.grace);
  if (values.cwd !== undefined) spec.cwd = resolve(base, values.cwd);
  if (values.env?.length) spec.env = pairs("--env", values.env);
  if (values.require?.length) spec.requires = pairs("--require", values.require);
  if (values.retries !== undefined) spec.retries = numberFlag("--retries", values.retries);
  return spec;
}

/** The flag each payload field comes from, for `validateCommandSpec`'s reasons. */
const FLAG_OF_FIELD = new Map([
  ["priority", "-p/--priority"],
  ["name", "--name"],
  ["cwd", "--cwd"],
  ["env", "--env"],
  ["timeout", "--timeout"],
  ["grace", "--grace"],
  ["requires", "--require"],
  ["retries", "--retries"],
]);

/**
 * A reason of `validateCommandSpec` in the words of the command line: the flag instead of the
 * field (`env: name "1X" must …` → `--env: name '1X' must …`, `requires.gpu must …` →
 * `--require gpu=…: the value must …`), quoted as the CLI quotes. Reasons about the command
 * stay as they are.
 */
function inFlagWords(reason: string): string {
  const [, field = "", tail = "", rest = ""] = /^(\w+)(\.\S+|:)? (.*)$/s.exec(reason) ?? [];
  const flag = FLAG_OF_FIELD.get(field);
  if (flag === undefined) return reason;
  const said = tail.startsWith(".")
    ? `${flag} ${tail.slice(1)}=…: the value ${rest}`
    : `${flag}${tail} ${rest}`;
  // describeValue's JSON strings, in the CLI's single quotes when nothing in them is escaped
  return said.replace(/"([^"\\']*)"/g, "'$1'");
}

/** A number as given; its range is for `validateCommandSpec` to check. */
function numberFlag(flag: string, text: string): number {
  const value = text.trim() === "" ? NaN : Number(text);
  if (!Number.isFinite(value)) throw new UsageError(`${flag} must be a number, got '${text}'`);
  return value;
}

/** `K=V` flags into an object (a later one wins). */
function pairs(flag: string, texts: readonly string[]): Record<string, string> {
  const object: Record<string, string> = {};
  for (const text of texts) {
    const at = text.indexOf("=");
    if (at < 1) throw new UsageError(`${flag} must be NAME=VALUE, got '${text}'`);
    object[text.slice(0, at)] = text.slice(at + 1);
  }
  return object;
}

async function run(config: Config, cli: CliIo): Promise<number> {
  using shutdown = new ShutdownSignal({ signal: cli.signal });
  const stop = shutdown.signal;
  const io = reportIo(cli, "submit", config);
  let specs: CommandSpec[] = [config.spec as CommandSpec];
  if (config.file !== undefined) {
    const read = await readJobFile(config.file, config.spec, config.base, io);
    if (read === undefined) return EXIT.usage;
    specs = read;
  }
  const opened = await openJobClient(config, io, stop);
  if (typeof opened === "number") return opened;
  await using client = opened;
  if (config.file !== undefined) return await submitMany(client, specs, config, io, stop);
  return await submitOne(client, specs[0] as CommandSpec, config, io, stop);
}

async function submitOne(
  client: JobClient,
  spec: CommandSpec,
  config: Config,
  io: ReportIo,
  stop: AbortSignal,
): Promise<number> {
  const id = newJobId();
  const lines = config.follow ? followOutput(client, id, io) : undefined;
  try {
    const answer = await untilStopped(client.submit(spec, { id }), stop);
    if (answer === undefined) {
      io.note(`stopped before the bus answered: ${id} may have been submitted`);
      return EXIT.interrupted;
    }
    if (answer.status === "rejected") {
      io.note(`rejected: ${answer.reason}`);
      return EXIT.rejected;
    }
    if (answer.status === "duplicate") {
      io.note(`the bus already has a job ${id} (${answer.state}): nothing submitted`);
      return EXIT.rejected;
    }
    io.out(id);
    lines?.start();
    if (answer.waiting !== undefined) {
      io.note(`${id} waits: ${answer.waiting}`);
      const hint = waitingHint(answer.waiting, spec);
      if (hint !== undefined) io.note(hint);
    }
    if (!config.wait) return EXIT.ok;
    return await waitAndReport(client, id, io, stop, config.follow);
  } finally {
    lines?.[Symbol.dispose]();
  }
}

/**
 * What to start so that a waiting job can run, from why it waits (`no scheduler allows command
 * sh`, `no scheduler with gpu=a100`, both, or `no scheduler connected`): `start a scheduler with
 * --label gpu=a100 --allow-command sh (or '*')`; undefined when it just waits its turn.
 */
function waitingHint(waiting: string, spec: CommandSpec): string | undefined {
  const none = waiting === "no scheduler connected";
  const flags: string[] = [];
  if (none || waiting.startsWith("no scheduler with ")) {
    for (const [key, value] of Object.entries(spec.requires ?? {})) {
      flags.push(`--label ${shellQuote(`${key}=${value}`)}`);
    }
  }
  if (none || waiting.includes("allows command")) {
    flags.push(`--allow-command ${shellQuote(spec.command[0] ?? "")} (or '*')`);
  }
  return flags.length > 0 ? `start a scheduler with ${flags.join(" ")}` : undefined;
}

/** A followed job's output, printed line by line once {@linkcode Follower.start} is called. */
interface Follower extends Disposable {
  /** Prints what came so far, then each piece as it comes (the job's id is printed first). */
  start(): void;
}

/** Prints a followed job's output as it comes, line by line; disposing flushes the rest. */
function followOutput(client: JobClient, id: string, io: ReportIo): Follower {
  const partial = { stdout: "", stderr: "" };
  let held: JobOutputEvent[] | undefined = [];
  const print = (stream: "stdout" | "stderr", line: string): void =>
    stream === "stdout" ? io.out(line) : io.err(line);
  const show = (event: JobOutputEvent): void => {
    if (event.dropped > 0) {
      io.note(`${id}: ${event.dropped} bytes of its ${event.stream} dropped (rate limit)`);
    }
    const lines = (partial[event.stream] + event.data).split("\n");
    partial[event.stream] = lines.pop() ?? "";
    for (const line of lines) print(event.stream, line);
  };
  const onOutput = (event: JobOutputEvent): void => {
    if (event.id !== id) return;
    if (held) held.push(event);
    else show(event);
  };
  client.addEventListener("output", onOutput);
  return {
    start: () => {
      for (const event of held ?? []) show(event);
      held = undefined;
    },
    [Symbol.dispose]: () => {
      client.removeEventListener("output", onOutput);
      if (held) return; // never started: the job was not submitted
      for (const stream of ["stdout", "stderr"] as const) {
        if (partial[stream] !== "") print(stream, partial[stream]);
      }
    },
  };
}

/** `--file`: submits every job, prints their ids; with `--wait`, waits for all. */
async function submitMany(
  client: JobClient,
  specs: CommandSpec[],
  config: Config,
  io: ReportIo,
  stop: AbortSignal,
): Promise<number> {
  const ids = specs.map(() => newJobId());
  const answers = specs.map((spec, i) => client.submit(spec, { id: ids[i] as string }));
  const accepted: string[] = [];
  const hinted = new Set<string>();
  let rejected = 0;
  for (const [i, promise] of answers.entries()) {
    const answer = await untilStopped(promise, stop);
    if (answer === undefined) {
      io.note(`stopped while submitting: ${plural(accepted.length, "job")} submitted`);
      return EXIT.interrupted;
    }
    if (answer.status === "accepted") {
      accepted.push(answer.id);
      io.out(answer.id);
      const hint = answer.waiting && waitingHint(answer.waiting, specs[i] as CommandSpec);
      if (hint && !hinted.has(hint)) { // once for all the jobs that wait for the same
        hinted.add(hint);
        io.note(`${answer.id} waits: ${answer.waiting}`);
        io.note(hint);
      }
    } else {
      rejected++;
      const why = answer.status === "rejected" ? answer.reason : "id already known";
      io.note(`job ${i + 1} of ${specs.length} rejected: ${why}`);
    }
  }
  if (!config.wait) return rejected > 0 ? EXIT.rejected : EXIT.ok;
  const outcome = await waitAll(client, accepted, rejected, config, io, stop);
  return outcome;
}

async function waitAll(
  client: JobClient,
  ids: string[],
  rejected: number,
  config: Config,
  io: ReportIo,
  stop: AbortSignal,
): Promise<number> {
  const total = ids.length + rejected;
  const byOutcome = new Map<string, number>(rejected ? [["rejected", rejected]] : []);
  let done = rejected;
  let saidAt = io.clock.now(); // the first line after progressMs, the last one always
  const progress = (last: boolean): void => {
    const now = io.clock.now();
    if (!last && now - saidAt < config.progressMs) return;
    saidAt = now;
    const counts = [...byOutcome].map(([k, n]) => `${stateInWords(k)} ${n}`).join(", ");
    io.note(`${done} of ${total} done${counts ? ` (${counts})` : ""}`);
  };
  const failures: JobEnd[] = [];
  const all = Promise.all(ids.map((id) =>
    client.wait(id).then((end) => {
      done++;
      byOutcome.set(end.state, (byOutcome.get(end.state) ?? 0) + 1);
      if (end.state !== "succeeded") failures.push(end);
      progress(false);
    })
  ));
  let finished: unknown;
  try {
    finished = await untilStopped(all, stop);
  } catch (error) {
    if (!(error instanceof JobClientRefusedError)) throw error;
    io.note(`the bus refused us while waiting: ${error.message}`);
    return EXIT.unreachable;
  }
  if (finished === undefined) {
    all.catch(() => {});
    progress(true);
    io.note(
      `stopped waiting: ${plural(total - done, "job")} ${total - done === 1 ? "keeps" : "keep"} ` +
        "running " +
        `(${jobsCommand("list", io)}; ${jobsCommand("cancel ID", io)})`,
    );
    return EXIT.interrupted;
  }
  progress(true);
  for (const end of failures.slice(0, 20)) io.note(describeEnd(end));
  return done === byOutcome.get("succeeded") ? EXIT.ok : EXIT.failed;
}

/** The promise's value, or `undefined` once `stop` aborts first. */
async function untilStopped<T>(promise: Promise<T>, stop: AbortSignal): Promise<T | undefined> {
  promise.catch(() => {}); // a rejection after a stop (the client closed) is no news
  if (stop.aborted) return undefined;
  const { promise: stopped, resolve } = Promise.withResolvers<undefined>();
  const onAbort = (): void => resolve(undefined);
  stop.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([promise, stopped]);
  } finally {
    stop.removeEventListener("abort", onAbort);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
