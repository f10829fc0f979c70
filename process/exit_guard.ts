/**
 * The exit guard: no orphaned jobs, and no death by a signal the program already handles. Every
 * live `Proc` is tracked here; when the program exits normally (the `unload` event, which
 * `Deno.exit()` also fires) every live job's process group gets SIGKILL, synchronously. While at
 * least one job is live the guard also listens for SIGINT and SIGTERM: on either it terminates
 * every live job (SIGTERM, SIGKILL after their grace period), then exits with 128 + the signal
 * number (130, 143). A second signal while it waits sends SIGKILL to them all at once.
 *
 * Programs that handle SIGINT/SIGTERM themselves (our CLIs drain and exit 0) turn the signal
 * part off with {@linkcode setSignalGuard}; the `unload` part always stays. Once such a program
 * has received its shutdown signal it calls {@linkcode holdSignals}: from then until the process
 * ends, those signals are absorbed. A repeat must not kill a program that is draining or has
 * drained with 130: `deno task` forwards to its child the Ctrl-C that the child, being in the
 * same process group, already got, and that copy may arrive after the program removed its own
 * listeners (Deno then restores the default action, which is to die).
 *
 * Not covered: a program that dies of an uncaught error or of SIGKILL runs no handler at all.
 * Deno children started with `Proc.deno` still exit by themselves then (see `lifeline.ts`);
 * other executables are left running.
 *
 * @module
 */

/** What the guard needs from a live job: its process group id and a way to end it. */
export interface GuardedProc {
  /** The group leader's pid, which is also the process group id. */
  readonly pid: number | undefined;
  /** Ends the job gracefully; resolves once it is gone. */
  terminate(): Promise<unknown>;
}

/** The signals the guard ends the program on, with their numbers (for the exit code). */
const GUARDED_SIGNALS: ReadonlyMap<Deno.Signal, number> = new Map([["SIGINT", 2], ["SIGTERM", 15]]);

const live = new Set<GuardedProc>();
const held = new Set<Deno.Signal>();
const listening = new Map<Deno.Signal, () => void>();
let signalGuard = true;
let exiting = false;
let unloadListener = false;

/**
 * Turns the guard's SIGINT/SIGTERM handling on or off (it is on by default). Turn it off when
 * the program handles those signals itself and ends its jobs in its own way. Normal-exit
 * cleanup (SIGKILL to the live jobs' groups on `unload`) stays on either way.
 *
 * @param enabled Whether the guard terminates live jobs and exits on SIGINT/SIGTERM.
 *
 * @example A CLI that drains on SIGINT itself
 * ```ts
 * import { setSignalGuard } from "./exit_guard.ts";
 * setSignalGuard(false);
 * ```
 */
export function setSignalGuard(enabled: boolean): void {
  signalGuard = enabled;
  syncListeners();
}

/**
 * How many jobs the guard tracks right now (started, not yet reaped).
 *
 * @returns The number of live jobs.
 *
 * @example
 * ```ts
 * import { liveProcCount } from "./exit_guard.ts";
 * console.log(liveProcCount()); // 0
 * ```
 */
export function liveProcCount(): number {
  return live.size;
}

/**
 * Starts tracking a live job. Called by `Proc` right after it spawned its child.
 *
 * @param proc The job, with its pid set.
 *
 * @example
 * ```ts
 * import { trackProc, untrackProc } from "./exit_guard.ts";
 * const job = { pid: undefined, terminate: () => Promise.resolve() };
 * trackProc(job);
 * untrackProc(job);
 * ```
 */
export function trackProc(proc: GuardedProc): void {
  live.add(proc);
  if (!unloadListener) {
    globalThis.addEventListener("unload", killAll);
    unloadListener = true;
  }
  syncListeners();
}

/**
 * Stops tracking a job. Called by `Proc` once its child was reaped.
 *
 * @param proc A job passed to {@linkcode trackProc} (unknown ones are ignored).
 *
 * @example
 * ```ts
 * import { untrackProc } from "./exit_guard.ts";
 * untrackProc({ pid: 1, terminate: () => Promise.resolve() }); // not tracked: no effect
 * ```
 */
export function untrackProc(proc: GuardedProc): void {
  live.delete(proc);
  syncListeners();
}

/**
 * Absorbs `signals` from now until the process ends: the program received one of them as its
 * shutdown request and is carrying it out, so a repeat must neither kill it (the default action,
 * exit 130 or 143) nor make the guard end it. {@linkcode ShutdownSignal} calls it on the first
 * signal it receives. There is no undoing it: a process that received its shutdown signal
 * stays in that state until it exits; tests that send real signals run it in a child process.
 *
 * @param signals The signals to absorb.
 *
 * @example A program that drains on SIGINT or SIGTERM by itself
 * ```ts
 * import { holdSignals } from "./exit_guard.ts";
 * function onShutdownSignal(): void {
 *   holdSignals(["SIGINT", "SIGTERM"]); // from now on, a repeat is absorbed
 *   // ... terminate the jobs, close the sockets, then exit 0
 * }
 * console.log(typeof onShutdownSignal); // "function"
 * ```
 */
export function holdSignals(signals: readonly Deno.Signal[]): void {
  for (const signal of signals) held.add(signal);
  syncListeners();
}

/** Signal listeners are held exactly while they are needed, so an idle program has none. */
function syncListeners(): void {
  const guarding = exiting || (signalGuard && live.size > 0);
  const wanted = new Set<Deno.Signal>(held);
  if (guarding) { for (const signal of GUARDED_SIGNALS.keys()) wanted.add(signal); }
  for (const [signal, handler] of listening) {
    if (wanted.has(signal)) continue;
    Deno.removeSignalListener(signal, handler);
    listening.delete(signal);
  }
  for (const signal of wanted) {
    if (listening.has(signal)) continue;
    const handler = (): void => void onSignal(signal);
    Deno.addSignalListener(signal, handler);
    listening.set(signal, handler);
  }
}

async function onSignal(signal: Deno.Signal): Promise<void> {
  if (held.has(signal)) return; // the program is already shutting down on it
  if (exiting) return killAll(); // a second signal: no more grace
  if (!signalGuard || live.size === 0) return; // another signal's listener is still held
  exiting = true;
  syncListeners();
  await Promise.allSettled([...live].map((proc) => proc.terminate()));
  Deno.exit(128 + GUARDED_SIGNALS.get(signal)!);
}
function killAll(): void {
  for (const proc of live) {
    if (proc.pid === undefined) continue;
    try {
      Deno.kill(-proc.pid, "SIGKILL");
    } catch {
      // ESRCH: the group is already gone. Nothing else can be done while exiting.
    }
  }
}
