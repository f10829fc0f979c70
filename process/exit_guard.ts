/**
 * The exit guard: no orphaned jobs. Every live `Proc` is tracked here; when the program exits
 * normally (the `unload` event, which `Deno.exit()` also fires) every live job's process group
 * gets SIGKILL, synchronously. While at least one job is live the guard also listens for SIGINT
 * and SIGTERM: on either it terminates every live job (SIGTERM, SIGKILL after their grace
 * period), then exits with 128 + the signal number (130, 143). A second signal while it waits
 * sends SIGKILL to them all at once.
 *
 * Programs that handle SIGINT/SIGTERM themselves (our CLIs drain and exit 0) turn the signal
 * part off with {@linkcode setSignalGuard}; the `unload` part always stays.
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

const GUARDED_SIGNALS = [["SIGINT", 2], ["SIGTERM", 15]] as const;

const live = new Set<GuardedProc>();
let signalGuard = true;
let listening = false;
let exiting = false;
let unloadListener = false;
const handlers = GUARDED_SIGNALS.map(([name, number]) => [name, () => onSignal(number)] as const);

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

/** Signal listeners are held exactly while they are needed, so an idle program has none. */
function syncListeners(): void {
  const wanted = exiting || (signalGuard && live.size > 0);
  if (wanted === listening) return;
  for (const [name, handler] of handlers) {
    if (wanted) Deno.addSignalListener(name, handler);
    else Deno.removeSignalListener(name, handler);
  }
  listening = wanted;
}

async function onSignal(signalNumber: number): Promise<void> {
  if (exiting) return killAll(); // a second signal: no more grace
  exiting = true;
  await Promise.allSettled([...live].map((proc) => proc.terminate()));
  Deno.exit(128 + signalNumber);
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
