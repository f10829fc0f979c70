/**
 * `Proc`: one child process run as a job, with an outcome instead of exceptions, a pausable
 * timeout, graceful termination of its whole process group and no orphans.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import { Deadline } from "../core/deadline.ts";
import { CantStartError, NotRunningError, ProcSpawnError } from "./errors.ts";
import { trackProc, untrackProc } from "./exit_guard.ts";
import { ChunkReader } from "./chunk_reader.ts";
import { LineReader } from "./line_reader.ts";
import { drainOutput, type OutputReader } from "./output_reader.ts";
import { TailReader } from "./tail_reader.ts";

/** How a {@linkcode Proc} ended: the seed's four results. */
export type ProcResult = "success" | "error" | "timeout" | "terminated";

/** Where a {@linkcode Proc}'s stdout and stderr go. */
export type ProcOutput = "inherit" | "capture" | "lines" | "chunks" | "null";

/** Which output stream a line came from, for {@linkcode ProcOptions.onLine}. */
export type ProcStream = "stdout" | "stderr";

/** A {@linkcode Proc}'s life: `created` → `running` → `ended` (its child was reaped). */
export type ProcState = "created" | "running" | "ended";

/** The final record of a {@linkcode Proc}'s run. */
export interface ProcOutcome {
  /**
   * `success` (exit code 0), `error` (any other exit), `timeout` (ended by its timeout) or
   * `terminated` (ended by `terminate()`, `kill()` or its abort signal). The first reason wins.
   */
  result: ProcResult;
  /** Exit code, or `null` when the child died of a signal. */
  code: number | null;
  /** The signal that killed the child, or `null` when it exited. */
  signal: Deno.Signal | null;
  /** The child's pid (also its process group id). */
  pid: number;
  /** When the child was spawned, in epoch milliseconds (from the Proc's clock). */
  startedAt: number;
  /** When the child was reaped, in epoch milliseconds (from the Proc's clock). */
  endedAt: number;
  /** `endedAt - startedAt`. */
  durationMs: number;
  /** The last `maxOutputBytes` of stdout, with `output: "capture"` only. */
  stdout?: string;
  /** The last `maxOutputBytes` of stderr, with `output: "capture"` only. */
  stderr?: string;
}

/** A done callback: sync or async; what it throws or rejects with goes to `onCallbackError`. */
export type ProcDoneCallback = (outcome: ProcOutcome) => void | Promise<void>;

/** Options for {@linkcode Proc}. */
export interface ProcOptions {
  /**
   * Arguments passed to the executable.
   * @default {[]}
   */
  args?: string[];
  /**
   * Environment variables set for the child, on top of the inherited ones.
   * @default {{}}
   */
  env?: Record<string, string>;
  /**
   * Start the child with only `env`, not the parent's environment.
   * @default {false}
   */
  clearEnv?: boolean;
  /**
   * Working directory of the child.
   * @default {Deno.cwd()}
   */
  cwd?: string | URL;
  /**
   * Where stdout and stderr go: the parent's (`inherit`), nowhere (`null`), a bounded
   * in-memory tail of each that appears in the outcome (`capture`), line by line to `onLine`
   * as they come (`lines`), or as raw chunks of bytes to `onChunk` (`chunks`). Stdin is always
   * `null`.
   * @default {"inherit"}
   */
  output?: ProcOutput;
  /**
   * With `output: "lines"`, called for each line of stdout and stderr (without its line
   * break; a line longer than `maxOutputBytes` is passed on in pieces). Required then.
   * @default {undefined}
   */
  onLine?: (line: string, stream: ProcStream) => void;
  /**
   * With `output: "chunks"`, called with each chunk of stdout and stderr as it comes; the next
   * chunk of that stream is read once it returns. Required then.
   * @default {undefined}
   */
  onChunk?: (chunk: Uint8Array, stream: ProcStream) => void;
  /**
   * How the child gets its own process group: `detached` (Deno's `detached: true`, which forks
   * the whole parent: its cost grows with the parent's memory) or the path of util-linux's
   * `setsid` (e.g. `/usr/bin/setsid`), which the child runs as `setsid COMMAND ARGS…`: a new
   * session made by the child's own exec, with Deno's cheaper spawn. The pid is the same.
   * @default {"detached"}
   */
  group?: "detached" | string;
  /**
   * Run the child as this user id (the parent must be allowed to: root).
   * @default {undefined}
   */
  uid?: number;
  /**
   * Run the child with this group id.
   * @default {undefined}
   */
  gid?: number;
  /**
   * With `output: "capture"`, how many trailing bytes of stdout and of stderr are kept; with
   * `output: "lines"`, the longest line buffered before it is passed on in pieces.
   * @default {65536}
   */
  maxOutputBytes?: number;
  /**
   * How long `terminate()` waits after SIGTERM before sending SIGKILL, in milliseconds.
   * @default {2000}
   */
  graceMs?: number;
  /**
   * Where time comes from (timestamps, timeout, grace period, the drain of output pipes).
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Receives what a done callback threw or rejected with. Without it such errors are
   * swallowed: a failing callback never affects the others, the outcome, or the program.
   * @default {undefined}
   */
  onCallbackError?: (error: unknown) => void;
}

/** Options for {@linkcode Proc.deno}: those of {@linkcode Proc} plus permissions. */
export interface DenoProcOptions extends ProcOptions {
  /**
   * Deno permission flags for the child, each starting with `--allow-`, for example
   * `["--allow-read=/tmp", "--allow-net=127.0.0.1"]`. The child gets none by default and is
   * never prompted (`--no-prompt`): what is not granted fails. `args` go to the module.
   * @default {[]}
   */
  permissions?: string[];
}

/** Options for {@linkcode Proc.start}. */
export interface ProcStartOptions {
  /**
   * Running time allowed, in milliseconds (time suspended does not count); when it is used up
   * the child is terminated and the result is `timeout`. No timeout when omitted.
   * @default {undefined}
   */
  timeoutMs?: number | undefined;
  /**
   * Aborting it terminates the child (result `terminated`).
   * @default {undefined}
   */
  signal?: AbortSignal | undefined;
}

const LIFELINE_URL = new URL("./lifeline.ts", import.meta.url).href;
/** How long output pipes may stay open after the child exited (a grandchild holding them). */
const DRAIN_MS = 500;

/**
 * A child process run as a job. It runs in its own process group (so Ctrl-C in a terminal no
 * longer reaches it: its owner decides its fate), and every signal it sends goes to the whole
 * group, so a job that started a pipeline or children of its own leaves nothing behind.
 *
 * - `wait()` resolves to a {@linkcode ProcOutcome}; a failing child never makes it reject.
 * - `terminate()` sends SIGTERM (and SIGCONT if suspended), then SIGKILL after `graceMs`.
 *   Once the leader (the direct child) is gone, whatever is left of its group gets SIGKILL.
 * - A timeout counts running time only: `suspend()` / `resume()` pause and resume it.
 * - While live, the Proc is tracked by the exit guard (see `exit_guard.ts`).
 *
 * Signals and pid reuse: the group id is the leader's pid, which the kernel cannot hand out
 * again while the leader is unreaped or any process of its group is alive. The Proc signals
 * its group while the leader is unreaped, plus once more when the leader has exited and the
 * Proc is being (or then gets) terminated or killed, to clean up what it left; never later,
 * and nothing is sent when a leader exits on its own (its leftovers are its business). The
 * remaining risk, a freed group id reused by a new process group in the instant between the
 * reap and that last signal, needs the pid counter to wrap in between; it is accepted.
 *
 * @example Run a command and capture its output
 * ```ts
 * import { Proc } from "./proc.ts";
 * const proc = new Proc("echo", { args: ["hello"], output: "capture" }).start();
 * const outcome = await proc.wait();
 * console.log(outcome.result, outcome.stdout); // "success" "hello\n"
 * ```
 */
export class Proc implements AsyncDisposable {
  #command: string;
  #args: string[];
  #env: Record<string, string> | undefined;
  #clearEnv: boolean;
  #cwd: string | URL | undefined;
  #output: ProcOutput;
  #maxOutputBytes: number;
  #graceMs: number;
  #clock: Clock;
  #onCallbackError: ((error: unknown) => void) | undefined;
  #onLine: ((line: string, stream: ProcStream) => void) | undefined;
  #onChunk: ((chunk: Uint8Array, stream: ProcStream) => void) | undefined;
  #setsid: string | undefined;
  #uid: number | undefined;
  #gid: number | undefined;

  #state: ProcState = "created";
  #pid: number | undefined;
  #done: Promise<ProcOutcome> | undefined;
  #outcome: ProcOutcome | undefined;
  #reason: "timeout" | "terminated" | undefined;
  #stopping = false;
  #suspended = false;
  #leftoversKilled = false;
  #deadline: Deadline | undefined;
  #graceTimer: TimerId | undefined;
  #unlistenAbort: (() => void) | undefined;
  #callbacks: ProcDoneCallback[] = [];

  /**
   * Prepares a job; nothing runs until {@linkcode Proc.start}.
   *
   * @param command The executable: a path, or a name looked up in `PATH`.
   * @param options See {@linkcode ProcOptions}.
   * @throws {TypeError} If `command` is empty or `output` is not a known mode.
   * @throws {RangeError} If `graceMs` or `maxOutputBytes` is out of range.
   */
  constructor(command: string, options: ProcOptions = {}) {
    if (typeof command !== "string" || command === "") {
      throw new TypeError(
        `Cannot create Proc: 'command' must be a non-empty string, got ${command}`,
      );
    }
    const output = options.output ?? "inherit";
    if (!["inherit", "capture", "lines", "chunks", "null"].includes(output)) {
      throw new TypeError(
        `Cannot create Proc: 'output' must be "inherit", "capture", "lines", "chunks" or "null", got ${output}`,
      );
    }
    if (output === "lines" && typeof options.onLine !== "function") {
      throw new TypeError(`Cannot create Proc: output "lines" needs an 'onLine' callback`);
    }
    if (output === "chunks" && typeof options.onChunk !== "function") {
      throw new TypeError(`Cannot create Proc: output "chunks" needs an 'onChunk' callback`);
    }
    const graceMs = options.graceMs ?? 2000;
    if (!Number.isFinite(graceMs) || graceMs < 0) {
      throw new RangeError(
        `Cannot create Proc: 'graceMs' must be a finite number >= 0, got ${graceMs}`,
      );
    }
    const maxOutputBytes = options.maxOutputBytes ?? 65536;
    if (!Number.isSafeInteger(maxOutputBytes) || maxOutputBytes < 1) {
      throw new RangeError(
        `Cannot create Proc: 'maxOutputBytes' must be a positive integer, got ${maxOutputBytes}`,
      );
    }
    this.#command = command;
    this.#args = [...(options.args ?? [])];
    this.#env = options.env;
    this.#clearEnv = options.clearEnv ?? false;
    this.#cwd = options.cwd;
    this.#output = output;
    this.#maxOutputBytes = maxOutputBytes;
    this.#graceMs = graceMs;
    this.#clock = options.clock ?? systemClock;
    this.#onCallbackError = options.onCallbackError;
    this.#onLine = options.onLine;
    this.#onChunk = options.onChunk;
    const group = options.group ?? "detached";
    this.#setsid = group === "detached" ? undefined : group;
    this.#uid = options.uid;
    this.#gid = options.gid;
  }

  /**
   * Prepares a job that runs a TypeScript/JavaScript module as a Deno child
   * (`deno run --no-check -q --no-prompt`), with only the permissions given (none by default)
   * and the lifeline preloaded, so the child exits by itself within about 200 ms when this
   * process dies, even by SIGKILL.
   *
   * @param module The module: a `URL` (e.g. `new URL("./job.ts", import.meta.url)`) or a
   *   specifier/path, resolved by the child against its `cwd`.
   * @param options See {@linkcode DenoProcOptions}; `args` are passed to the module.
   * @returns A Proc, not yet started.
   * @throws {TypeError} If a permission does not start with `--allow-`.
   *
   * @example A module that may read /tmp and nothing else
   * ```ts
   * import { Proc } from "./proc.ts";
   * const proc = Proc.deno(new URL("./job.ts", import.meta.url), {
   *   args: ["--size", "10"],
   *   permissions: ["--allow-read=/tmp"],
   * });
   * console.log(proc.state); // "created"
   * ```
   */
  static deno(module: string | URL, options: DenoProcOptions = {}): Proc {
    const permissions = options.permissions ?? [];
    for (const flag of permissions) {
      if (typeof flag !== "string" || !flag.startsWith("--allow-")) {
        throw new TypeError(
          `Cannot create Proc.deno: each permission must start with "--allow-", got ${
            JSON.stringify(flag)
          }`,
        );
      }
    }
    const specifier = module instanceof URL ? module.href : module;
    const lifeline = `${LIFELINE_URL}?ppid=${Deno.pid}`;
    const args = ["run", "--no-check", "-q", "--no-prompt", "--preload", lifeline];
    args.push(...permissions, specifier, ...(options.args ?? []));
    return new Proc(Deno.execPath(), { ...options, args });
  }

  /** The child's pid (and process group id) once started, else `undefined`. */
  get pid(): number | undefined {
    return this.#pid;
  }

  /** `created`, `running` or `ended` (the child was reaped; the outcome may still be pending). */
  get state(): ProcState {
    return this.#state;
  }

  /** Whether the job is suspended (SIGSTOP sent, no SIGCONT yet). */
  get suspended(): boolean {
    return this.#suspended;
  }

  /** The final outcome, once there is one. */
  get outcome(): ProcOutcome | undefined {
    return this.#outcome;
  }

  /**
   * Spawns the child, in a process group of its own, stdin `null`.
   *
   * @param options See {@linkcode ProcStartOptions}.
   * @returns This Proc, for chaining (`await proc.start().wait()`).
   * @throws {CantStartError} If the Proc was already started, or has ended.
   * @throws {ProcSpawnError} If the executable could not be started (missing, not executable).
   * @throws {RangeError} If `timeoutMs` is negative or not finite.
   * @throws {DOMException} The signal's reason, if `signal` is already aborted (nothing runs).
   *
   * @example
   * ```ts
   * import { Proc } from "./proc.ts";
   * const proc = new Proc("sleep", { args: ["5"] }).start({ timeoutMs: 100 });
   * console.log((await proc.wait()).result); // "timeout"
   * ```
   */
  start(options: ProcStartOptions = {}): this {
    if (this.#state !== "created") {
      const why = this.#state === "running" ? "it is already running" : "it has ended";
      throw new CantStartError(`Cannot start Proc '${this.#command}': ${why}`);
    }
    const { timeoutMs, signal } = options;
    if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs < 0)) {
      throw new RangeError(
        `Cannot start Proc: 'timeoutMs' must be a finite number >= 0, got ${timeoutMs}`,
      );
    }
    signal?.throwIfAborted();
    const stdio = this.#output === "inherit" || this.#output === "null" ? this.#output : "piped";
    const setsid = this.#setsid;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(setsid ?? this.#command, {
        args: setsid === undefined ? this.#args : [this.#command, ...this.#args],
        ...(this.#uid !== undefined && { uid: this.#uid }),
        ...(this.#gid !== undefined && { gid: this.#gid }),
        ...(this.#env !== undefined && { env: this.#env }),
        clearEnv: this.#clearEnv,
        ...(this.#cwd !== undefined && { cwd: this.#cwd }),
        stdin: "null",
        stdout: stdio,
        stderr: stdio,
        detached: setsid === undefined,
      }).spawn();
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new ProcSpawnError(`Cannot start '${this.#command}': ${why}`, { cause: error });
    }
    this.#state = "running";
    this.#pid = child.pid;
    const startedAt = this.#clock.now();
    trackProc(this);
    if (timeoutMs !== undefined) {
      this.#deadline = new Deadline(timeoutMs, () => this.#stop("timeout"), { clock: this.#clock });
    }
    if (signal) {
      const onAbort = (): void => void this.#stop("terminated");
      signal.addEventListener("abort", onAbort, { once: true });
      this.#unlistenAbort = () => signal.removeEventListener("abort", onAbort);
    }
    this.#done = this.#finish(child, startedAt);
    return this;
  }

  /**
   * Waits for the child to end.
   *
   * @returns The outcome; it never rejects because of how the child ended.
   * @throws {NotRunningError} (rejects) If the Proc was never started.
   *
   * @example
   * ```ts
   * import { Proc } from "./proc.ts";
   * const outcome = await new Proc("false").start().wait();
   * console.log(outcome.result, outcome.code); // "error" 1
   * ```
   */
  wait(): Promise<ProcOutcome> {
    return this.#done ?? this.#neverStarted("wait for");
  }

  /**
   * Ends the job gracefully: SIGTERM to its group (and SIGCONT if suspended, so it can act on
   * it), SIGKILL after `graceMs` if the child is still there; when the child has exited, what
   * is left of its group gets SIGKILL. Idempotent. Called after the child exited on its own,
   * it only sends that last SIGKILL (once) and leaves the outcome as it was.
   *
   * @returns The outcome, once the child is gone: `terminated`, unless another reason came
   *   first (a timeout) or the child had already ended.
   * @throws {NotRunningError} (rejects) If the Proc was never started.
   *
   * @example
   * ```ts
   * import { Proc } from "./proc.ts";
   * const proc = new Proc("sleep", { args: ["30"] }).start();
   * const outcome = await proc.terminate();
   * console.log(outcome.result, outcome.signal); // "terminated" "SIGTERM"
   * ```
   */
  terminate(): Promise<ProcOutcome> {
    return this.#done ? this.#stop("terminated") : this.#neverStarted("terminate");
  }

  /**
   * Ends the job now: SIGKILL to its group. Idempotent, like {@linkcode Proc.terminate}.
   *
   * @returns The outcome, once the child is gone (`terminated` unless another reason came
   *   first or the child had already ended).
   * @throws {NotRunningError} (rejects) If the Proc was never started.
   *
   * @example
   * ```ts
   * import { Proc } from "./proc.ts";
   * const proc = new Proc("sleep", { args: ["30"] }).start();
   * console.log((await proc.kill()).signal); // "SIGKILL"
   * ```
   */
  kill(): Promise<ProcOutcome> {
    if (!this.#done) return this.#neverStarted("kill");
    if (this.#state === "ended") return this.#killLeftovers();
    this.#reason ??= "terminated";
    this.#stopping = true;
    this.#deadline?.cancel();
    this.#signalGroup("SIGKILL");
    return this.#done;
  }

  /**
   * Pauses the job (SIGSTOP to its group) and its timeout. No effect unless it is running,
   * not suspended and not being terminated.
   *
   * @example
   * ```ts
   * import { Proc } from "./proc.ts";
   * const proc = new Proc("sleep", { args: ["30"] }).start({ timeoutMs: 1000 });
   * proc.suspend(); // the timeout stops counting
   * proc.resume();
   * await proc.terminate();
   * ```
   */
  suspend(): void {
    if (this.#state !== "running" || this.#stopping || this.#suspended) return;
    this.#signalGroup("SIGSTOP");
    this.#deadline?.pause();
    this.#suspended = true;
  }

  /**
   * Resumes a suspended job (SIGCONT to its group) and its timeout. No effect unless suspended.
   *
   * @example
   * ```ts
   * import { Proc } from "./proc.ts";
   * const proc = new Proc("sleep", { args: ["30"] }).start();
   * proc.suspend();
   * proc.resume();
   * console.log(proc.suspended); // false
   * await proc.kill();
   * ```
   */
  resume(): void {
    if (!this.#suspended) return;
    this.#suspended = false;
    if (this.#state !== "running") return;
    this.#signalGroup("SIGCONT");
    this.#deadline?.resume();
  }

  /**
   * Registers a callback called exactly once with the final outcome, even when registered
   * after the end (then on a microtask). Callbacks run in registration order, before `wait()`
   * resolves; one that throws or rejects affects nothing else (see `onCallbackError`).
   *
   * @param callback Called with the outcome; may be async.
   *
   * @example
   * ```ts
   * import { Proc } from "./proc.ts";
   * const proc = new Proc("true");
   * proc.onDone((outcome) => console.log(outcome.result)); // "success"
   * await proc.start().wait();
   * ```
   */
  onDone(callback: ProcDoneCallback): void {
    const outcome = this.#outcome;
    if (outcome) queueMicrotask(() => this.#call(callback, outcome));
    else this.#callbacks.push(callback);
  }

  /**
   * Terminates the job if it is running and waits for its outcome; for `await using`.
   *
   * @example
   * ```ts
   * import { Proc } from "./proc.ts";
   * await using proc = new Proc("sleep", { args: ["30"] }).start();
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#state === "running") await this.terminate();
    else if (this.#done) await this.#done;
  }

  #neverStarted(action: string): Promise<never> {
    return Promise.reject(
      new NotRunningError(`Cannot ${action} Proc '${this.#command}': it was never started`),
    );
  }

  #stop(reason: "timeout" | "terminated"): Promise<ProcOutcome> {
    const done = this.#done!;
    if (this.#state === "ended") return this.#killLeftovers();
    if (this.#stopping) return done;
    this.#stopping = true;
    this.#reason ??= reason;
    this.#deadline?.cancel();
    this.#signalGroup("SIGTERM");
    if (this.#suspended) this.#signalGroup("SIGCONT");
    this.#suspended = false;
    this.#graceTimer = this.#clock.setTimeout(() => {
      this.#graceTimer = undefined;
      this.#signalGroup("SIGKILL");
    }, this.#graceMs);
    return done;
  }

  /** After the leader is reaped: one last SIGKILL for what is left of its group. */
  #killLeftovers(): Promise<ProcOutcome> {
    if (!this.#leftoversKilled) {
      this.#leftoversKilled = true;
      this.#signalGroup("SIGKILL");
    }
    return this.#done!;
  }

  #signalGroup(signal: Deno.Signal): void {
    try {
      Deno.kill(-this.#pid!, signal);
    } catch {
      // ESRCH: the group is empty (its leader may be an unreaped zombie). Any other failure
      // (EPERM) would mean the id is no longer ours. Either way there is nothing to signal,
      // except for a child started through `setsid` that has not made its group yet.
      if (this.#setsid !== undefined && this.#state === "running") this.#signalLeader(signal);
    }
  }

  #signalLeader(signal: Deno.Signal): void {
    try {
      Deno.kill(this.#pid!, signal);
    } catch {
      // gone already
    }
  }

  async #finish(child: Deno.ChildProcess, startedAt: number): Promise<ProcOutcome> {
    const capture = this.#output === "capture";
    const max = this.#maxOutputBytes;
    let stdout: OutputReader | undefined;
    let stderr: OutputReader | undefined;
    if (capture) {
      stdout = new TailReader(child.stdout, max);
      stderr = new TailReader(child.stderr, max);
    } else if (this.#output === "lines") {
      const onLine = this.#onLine!;
      stdout = new LineReader(child.stdout, max, (line) => onLine(line, "stdout"));
      stderr = new LineReader(child.stderr, max, (line) => onLine(line, "stderr"));
    } else if (this.#output === "chunks") {
      const onChunk = this.#onChunk!;
      stdout = new ChunkReader(child.stdout, (chunk) => onChunk(chunk, "stdout"));
      stderr = new ChunkReader(child.stderr, (chunk) => onChunk(chunk, "stderr"));
    }
    const status = await child.status;
    const endedAt = this.#clock.now();
    this.#state = "ended";
    this.#suspended = false;
    untrackProc(this);
    this.#deadline?.cancel();
    if (this.#graceTimer !== undefined) this.#clock.clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    this.#unlistenAbort?.();
    if (this.#stopping) this.#killLeftovers();
    if (stdout && stderr) {
      await drainOutput([stdout, stderr], { timeoutMs: DRAIN_MS, clock: this.#clock });
    }
    const result = this.#reason ?? (status.success ? "success" : "error");
    const outcome: ProcOutcome = {
      result,
      code: status.signal === null ? status.code : null,
      signal: status.signal,
      pid: child.pid,
      startedAt,
      endedAt,
      durationMs: endedAt - startedAt,
    };
    if (stdout instanceof TailReader && stderr instanceof TailReader) {
      outcome.stdout = stdout.text();
      outcome.stderr = stderr.text();
    }
    this.#outcome = outcome;
    const callbacks = this.#callbacks;
    this.#callbacks = [];
    for (const callback of callbacks) this.#call(callback, outcome);
    return outcome;
  }

  #call(callback: ProcDoneCallback, outcome: ProcOutcome): void {
    try {
      const returned = callback(outcome);
      if (returned instanceof Promise) returned.catch((error) => this.#report(error));
    } catch (error) {
      this.#report(error);
    }
  }

  #report(error: unknown): void {
    try {
      this.#onCallbackError?.(error);
    } catch {
      // The error reporter itself failed: nothing sensible is left to tell.
    }
  }
}
