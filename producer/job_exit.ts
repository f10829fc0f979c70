/**
 * What `deno task submit` and `deno task jobs` share: their exit codes, the owner they speak
 * for, connecting within a time limit, and waiting for one job's end to print its output and
 * exit with its code.
 *
 * @module
 */

import type { CliIo } from "../cli/main_options.ts";
import { seconds } from "../cli/wording.ts";
import { resultExitCode } from "../scheduler/job_result.ts";
import type { BusErrorEvent, BusMessageEvent } from "../bus/client.ts";
import { JobClientRefusedError } from "./errors.ts";
import { JobClient, type JobEnd } from "./job_client.ts";
import type { Credentials } from "../cli/credentials.ts";

/** The exit codes of `submit` and `jobs` (README, "Exit codes"). */
export const EXIT = {
  /** Done: submitted, or (waiting) the job succeeded. */
  ok: 0,
  /** `--file --wait`: some job did not succeed; `jobs`: the bus refused the request. */
  failed: 1,
  /** A bad command line. */
  usage: 2,
  /** The bus rejected the job. */
  rejected: 3,
  /** The bus was unreachable within `--connect-timeout`. */
  unreachable: 4,
  /** The job timed out. */
  timedOut: 124,
  /** The job could not start (no such executable, no such cwd, permission denied). */
  cannotStart: 125,
  /** The job was cancelled or evicted for good. */
  cancelled: 126,
  /** Ctrl-C (or SIGTERM) while waiting: the job keeps running. */
  interrupted: 130,
} as const;

/** The bus the CLIs talk to unless `--url` says otherwise. */
export const DEFAULT_URL = "ws://127.0.0.1:8101";

/**
 * A CLI's output for these helpers: its streams, its clock, `note` for its own lines, and what
 * it needs to say about itself (its name, its `--url` and `--owner`).
 */
export interface ReportIo extends Pick<CliIo, "out" | "err" | "clock"> {
  /** Prints one line of the CLI's own on stderr (`submit: …`). */
  note: (line: string) => void;
  /** The CLI's name, in the line that tells its own exit code: `submit exits 124`. */
  name: string;
  /** The bus (`--url`), repeated in a suggested `deno task jobs` command unless the default. */
  url: string;
  /** `--owner` as given, repeated in a suggested `deno task jobs` command. */
  owner?: string | undefined;
  /** `--token-file` and `--ca` as given, repeated in a suggested `deno task jobs` command. */
  credentialFlags?: { "token-file"?: string | undefined; ca?: string | undefined } | undefined;
}

/**
 * The {@linkcode ReportIo} of `submit` or `jobs`: the CLI's io, its own lines prefixed with its
 * name, and the flags to repeat in a suggested `deno task jobs` command.
 *
 * @param cli The CLI's io.
 * @param name The CLI's name (`submit`, `jobs`).
 * @param flags The `--url`, `--owner` and credential flags as given.
 * @returns The io.
 * @example
 * ```ts
 * import { reportIo } from "./job_exit.ts";
 * import { cliIo } from "../cli/main_options.ts";
 * const io = reportIo(cliIo(), "jobs", { url: "ws://127.0.0.1:8101", ownerFlag: undefined });
 * console.log(io.name); // jobs
 * ```
 */
export function reportIo(
  cli: CliIo,
  name: string,
  flags: {
    url: string;
    ownerFlag: string | undefined;
    credentialFlags?: ReportIo["credentialFlags"];
  },
): CliIo & ReportIo {
  return {
    ...cli,
    note: (line) => cli.err(`${name}: ${line}`),
    name,
    url: flags.url,
    owner: flags.ownerFlag,
    credentialFlags: flags.credentialFlags,
  };
}

/**
 * A `deno task jobs` command line to suggest, with the `--url` (unless the default), the
 * `--owner`, `--token-file` and `--ca` (when given) the suggesting CLI used, so it reaches the
 * same bus as the same owner.
 *
 * @param args What follows `--`: `cancel j-1`, `list`.
 * @param io The `url`, `owner` and `credentialFlags` to repeat.
 * @returns The command line.
 * @example
 * ```ts
 * import { jobsCommand } from "./job_exit.ts";
 * console.log(jobsCommand("cancel j-1", { url: "ws://10.0.0.2:8101", owner: "ada lovelace" }));
 * // deno task jobs -- cancel j-1 --url ws://10.0.0.2:8101 --owner 'ada lovelace'
 * ```
 */
export function jobsCommand(
  args: string,
  io: Pick<ReportIo, "url" | "owner" | "credentialFlags">,
): string {
  const flags = [args];
  if (io.url !== DEFAULT_URL) flags.push(`--url ${shellQuote(io.url)}`);
  if (io.owner !== undefined) flags.push(`--owner ${shellQuote(io.owner)}`);
  for (const [flag, value] of Object.entries(io.credentialFlags ?? {})) {
    if (value !== undefined) flags.push(`--${flag} ${shellQuote(value)}`);
  }
  return `deno task jobs -- ${flags.join(" ")}`;
}

/**
 * A job state in words, for sentences: `timed_out` → `timed out`.
 *
 * @param state The state.
 * @returns It in words.
 * @example
 * ```ts
 * import { stateInWords } from "./job_exit.ts";
 * console.log(stateInWords("timed_out"), stateInWords("failed")); // timed out failed
 * ```
 */
export function stateInWords(state: string): string {
  return state.replaceAll("_", " ");
}

/**
 * The exit code that tells a job's end, as a shell would: its own exit code, `128 + N` when
 * signal N killed it, 124 timed out, 125 could not start, 126 cancelled or evicted, 1 for a
 * failure without an exit code.
 *
 * @param end The job's end.
 * @returns The exit code.
 * @example
 * ```ts
 * import { exitCodeOf } from "./job_exit.ts";
 * const result = { exitCode: null, signal: "SIGKILL", durationMs: 5, startedAt: 1, endedAt: 6,
 *   scheduler: "a", attempts: 1 };
 * console.log(exitCodeOf({ id: "j-1", state: "failed", result })); // 137
 * console.log(exitCodeOf({ id: "j-1", state: "timed_out" })); // 124
 * ```
 */
export function exitCodeOf(end: JobEnd): number {
  switch (end.state) {
    case "succeeded":
    case "delivered":
      return end.result ? resultExitCode(end.result) ?? EXIT.ok : EXIT.ok;
    case "timed_out":
      return EXIT.timedOut;
    case "cancelled":
    case "evicted":
      return EXIT.cancelled;
  }
  if (end.result?.startError !== undefined) return EXIT.cannotStart;
  const code = end.result ? resultExitCode(end.result) : undefined;
  return code === undefined || code === 0 ? EXIT.failed : code;
}

/**
 * A job's end in one line, for people, its state in words: `j-1 failed: exit code 3 (on node-a,
 * 0.81 s)`, `j-1 timed out after 0.5 s: killed by SIGTERM`, `j-1 cancelled by its owner`. The
 * exit code said is the job's own, never the one a CLI derives from the end (see
 * {@linkcode waitAndReport}).
 *
 * @param end The job's end.
 * @returns The line.
 * @example
 * ```ts
 * import { describeEnd } from "./job_exit.ts";
 * console.log(describeEnd({ id: "j-1", state: "cancelled", reason: "cancelled by its owner" }));
 * // j-1 cancelled by its owner
 * ```
 */
export function describeEnd(end: JobEnd): string {
  const r = end.result;
  const words = stateInWords(end.state);
  let head = `${end.id} ${words}`;
  let reason = end.reason;
  const after = end.state === "timed_out" && /\btimeout of (\d[\d.]* s)$/.exec(reason ?? "");
  if (after) { // the scheduler's "ran past its timeout of 0.5 s"
    head += ` after ${after[1]}`;
    reason = undefined;
  } else if (reason?.startsWith(`${words} `)) { // "cancelled by its owner"
    head = `${end.id} ${reason}`;
    reason = undefined;
  }
  const what: string[] = [];
  if (r?.startError !== undefined) what.push(`could not start: ${r.startError}`);
  else if (r?.signal) what.push(`killed by ${r.signal}`);
  else if (r && r.exitCode !== null) what.push(`exit code ${r.exitCode}`);
  if (reason !== undefined && !what.some((w) => w.includes(reason ?? ""))) what.push(reason);
  const where: string[] = [];
  const scheduler = r?.scheduler ?? end.scheduler;
  if (scheduler) where.push(`on ${scheduler}`);
  if (r && r.startedAt !== null) where.push(seconds(r.durationMs, 3));
  if (r && r.attempts > 1) where.push(`attempt ${r.attempts}`);
  const details = what.length ? `: ${what.join("; ")}` : "";
  return `${head}${details}${where.length ? ` (${where.join(", ")})` : ""}`;
}

/**
 * Prints a job's output tails: stdout's lines with `io.out`, stderr's with `io.err`, and a note
 * when a tail is only the end of more output.
 *
 * @param end The job's end.
 * @param io Where lines go.
 * @example
 * ```ts
 * import { printTails } from "./job_exit.ts";
 * const lines: string[] = [];
 * const result = { exitCode: 0, signal: null, durationMs: 5, startedAt: 1, endedAt: 6,
 *   scheduler: "a", attempts: 1, stdoutTail: "hi\nthere\n" };
 * printTails({ id: "j-1", state: "succeeded", result }, { out: (l) => lines.push(l), err: () => {} });
 * console.log(lines); // ["hi", "there"]
 * ```
 */
export function printTails(end: JobEnd, io: Pick<CliIo, "out" | "err">): void {
  const r = end.result;
  if (!r) return;
  const streams = [
    [r.stdoutTail, r.stdoutTruncated, r.stdoutFile, "stdout", io.out],
    [r.stderrTail, r.stderrTruncated, r.stderrFile, "stderr", io.err],
  ] as const;
  for (const [tail, truncated, file, name, print] of streams) {
    if (truncated) {
      const whole = file ? `; all of it in ${file}` : "";
      io.err(`(${end.id}: only the end of its ${name} follows${whole})`);
    }
    for (const line of splitLines(tail ?? "")) print(line);
  }
}

/**
 * Splits text into lines for a line printer: a final newline ends the last line rather than
 * starting an empty one.
 *
 * @param text The text.
 * @returns The lines (none for `""`).
 * @example
 * ```ts
 * import { splitLines } from "./job_exit.ts";
 * console.log(splitLines("a\nb\n"), splitLines("")); // ["a", "b"] []
 * ```
 */
export function splitLines(text: string): string[] {
  if (text === "") return [];
  return (text.endsWith("\n") ? text.slice(0, -1) : text).split("\n");
}

/**
 * An argument as a shell would need it: as it is when it has only safe characters, else in
 * single quotes.
 *
 * @param arg The argument.
 * @returns It, quoted if need be.
 * @example
 * ```ts
 * import { shellQuote } from "./job_exit.ts";
 * console.log(shellQuote("gpu=a100"), shellQuote("it's")); // gpu=a100 'it'\''s'
 * ```
 */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * Whose jobs these are: `--owner`, else `$SCHED_OWNER`, else `$USER`, else `"user"`.
 *
 * @param flag The `--owner` value, if given.
 * @param env Reads an environment variable (undefined when unset or not permitted).
 * @returns The owner.
 * @example
 * ```ts
 * import { resolveOwner } from "./job_exit.ts";
 * console.log(resolveOwner(undefined, (name) => name === "USER" ? "ada" : undefined)); // "ada"
 * ```
 */
export function resolveOwner(
  flag: string | undefined,
  env: (name: string) => string | undefined,
): string {
  return flag ?? (env("SCHED_OWNER") || undefined) ?? (env("USER") || undefined) ?? "user";
}

/**
 * Reads an environment variable, `undefined` when unset or when the permission is missing.
 *
 * @param name The variable.
 * @returns Its value, if readable.
 * @example
 * ```ts
 * import { readEnv } from "./job_exit.ts";
 * console.log(typeof (readEnv("HOME") ?? "")); // "string"
 * ```
 */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * The client of `submit` and `jobs`: made, started, and registered with the bus within
 * `connectTimeoutS` (see {@linkcode connectWithin}); closed again when it could not be.
 *
 * @param settings The bus URLs, the owner, the credentials, the time to connect.
 * @param io The clock and the line sayer.
 * @param stop Aborted on Ctrl-C.
 * @returns The registered client (close it), or the exit code.
 * @example
 * ```ts
 * import { openJobClient } from "./job_exit.ts";
 * import { cliIo } from "../cli/main_options.ts";
 * const io = { ...cliIo(), note: () => {} };
 * const settings = {
 *   urls: ["ws://127.0.0.1:9"], owner: "docs", credentials: {}, connectTimeoutS: 0.05,
 * };
 * console.log(await openJobClient(settings, io, io.signal)); // 4
 * ```
 */
export async function openJobClient(
  settings: {
    urls: readonly string[];
    owner: string;
    credentials: Credentials;
    connectTimeoutS: number;
  },
  io: Pick<ReportIo, "clock" | "note">,
  stop: AbortSignal,
): Promise<JobClient | number> {
  const client = new JobClient(settings.urls, {
    owner: settings.owner,
    clock: io.clock,
    ...settings.credentials,
  });
  client.start();
  const unreachable = await connectWithin(client, settings.connectTimeoutS, io, stop);
  if (unreachable === undefined) return client;
  await client.close();
  return unreachable;
}

/**
 * Waits until the client is registered with the bus, at most `timeoutS` seconds. A refusal (the
 * bus or TLS refused the connection: an untrusted certificate, `401` for a missing or unknown
 * token) ends the wait at once, with its line said.
 *
 * @param client The client (started).
 * @param timeoutS Seconds to wait.
 * @param io The clock and the stop signal.
 * @param stop Aborted on Ctrl-C.
 * @returns `undefined` once connected, else the exit code: {@linkcode EXIT}.unreachable (with
 *   a line said) or {@linkcode EXIT}.interrupted.
 * @example
 * ```ts
 * import { connectWithin } from "./job_exit.ts";
 * import { JobClient } from "./job_client.ts";
 * import { cliIo } from "../cli/main_options.ts";
 * await using client = new JobClient("ws://127.0.0.1:9", { owner: "docs" });
 * client.start();
 * const io = { ...cliIo(), note: () => {} };
 * console.log(await connectWithin(client, 0.05, io, io.signal)); // 4
 * ```
 */
export async function connectWithin(
  client: JobClient,
  timeoutS: number,
  io: Pick<ReportIo, "clock" | "note">,
  stop: AbortSignal,
): Promise<number | undefined> {
  const timeout = new AbortController();
  const timer = io.clock.setTimeout(() => timeout.abort(), timeoutS * 1000);
  let refusal: string | undefined;
  const onError = (event: BusErrorEvent): void => {
    if (!event.refused) return;
    refusal = event.error.message;
    timeout.abort();
  };
  // A bus that answers the register with an error (e.g. a token of another role) never says
  // `registered`: say its reason now rather than wait out the timeout.
  const onMessage = ({ message }: BusMessageEvent): void => {
    if (message.cmd !== "error" || message.op !== "register") return;
    refusal = `the bus refused the registration: ${String(message.reason)}`;
    timeout.abort();
  };
  client.bus.addEventListener("error", onError);
  client.bus.addEventListener("message", onMessage);
  try {
    await client.ready(AbortSignal.any([timeout.signal, stop]));
    return undefined;
  } catch {
    if (stop.aborted) return EXIT.interrupted;
    if (refusal !== undefined) {
      io.note(refusal);
      return EXIT.unreachable;
    }
    io.note(
      client.bus.connected
        ? `the bus at ${client.bus.url} did not answer within ${timeoutS} s (the seed's bus never ` +
          "does: command jobs need this project's bus)"
        : `cannot reach the bus at ${client.bus.urls.join(" or ")} within ${timeoutS} s`,
    );
    return EXIT.unreachable;
  } finally {
    io.clock.clearTimeout(timer);
    client.bus.removeEventListener("error", onError);
    client.bus.removeEventListener("message", onMessage);
  }
}

/**
 * Waits for one job's end and reports it: the output tails (unless `followed`), a line on
 * stderr when it did not succeed (its end, then the CLI's own exit code: `j-1 timed out after
 * 0.5 s: killed by SIGTERM; submit exits 124`), and that exit code ({@linkcode exitCodeOf}).
 * On Ctrl-C it says the job keeps running and how to cancel it ({@linkcode jobsCommand}), and
 * returns 130.
 *
 * @param client The client.
 * @param id The job.
 * @param io Where lines go, the CLI's name, its `--url` and `--owner`.
 * @param stop Aborted on Ctrl-C.
 * @param followed Whether the output was streamed already (no tails then).
 * @returns The exit code.
 * @example
 * ```ts
 * import { waitAndReport } from "./job_exit.ts";
 * import { JobClient } from "./job_client.ts";
 * import { cliIo } from "../cli/main_options.ts";
 * await using client = new JobClient("ws://127.0.0.1:9", { owner: "docs" });
 * const io = { ...cliIo(), note: () => {}, name: "submit", url: "ws://127.0.0.1:9" };
 * console.log(await waitAndReport(client, "j-1", io, AbortSignal.abort())); // 130
 * ```
 */
export async function waitAndReport(
  client: JobClient,
  id: string,
  io: Pick<ReportIo, "out" | "err" | "note" | "name" | "url" | "owner">,
  stop: AbortSignal,
  followed = false,
): Promise<number> {
  let end: JobEnd;
  try {
    end = await client.wait(id, stop);
  } catch (error) {
    if (error instanceof JobClientRefusedError) {
      io.note(`the bus refused us while waiting for ${id}: ${error.message}`);
      return EXIT.unreachable;
    }
    if (!stop.aborted) throw error;
    io.note(
      `stopped waiting: ${id} keeps running (cancel it with: ${jobsCommand(`cancel ${id}`, io)})`,
    );
    return EXIT.interrupted;
  }
  if (!followed) printTails(end, io);
  const code = exitCodeOf(end);
  if (end.state !== "succeeded" && end.state !== "delivered") {
    io.note(`${describeEnd(end)}; ${io.name} exits ${code}`);
  }
  return code;
}
