/**
 * Graceful shutdown for command-line programs: an `AbortSignal` that aborts on SIGINT or
 * SIGTERM, so a program can drain (terminate its jobs, close its sockets) and exit 0.
 *
 * @module
 */

import { holdSignals, setSignalGuard } from "./exit_guard.ts";

/** How many ShutdownSignals listen now: the exit guard is off while any does. */
let listeningCount = 0;

/** Options for {@linkcode ShutdownSignal}. */
export interface ShutdownSignalOptions {
  /**
   * The signals that ask for a shutdown.
   * @default {["SIGINT", "SIGTERM"]}
   */
  signals?: Deno.Signal[];
  /**
   * Another signal that also asks for a shutdown (e.g. a test's).
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Listens for SIGINT and SIGTERM and turns the first one into an aborted
 * {@linkcode ShutdownSignal.signal}. While it listens, the exit guard's own SIGINT/SIGTERM
 * handling (which would terminate every job and exit at once) is off: the program drains in
 * its own way. Dispose of it (`using`) to remove the listeners and restore the guard.
 *
 * The first signal received commits the process to its shutdown: from then until it exits, the
 * shutdown signals are absorbed (see `holdSignals` in `exit_guard.ts`), even after disposal. A
 * repeat, such as the copy of a Ctrl-C that `deno task` forwards to a child that already got
 * it, therefore never kills a program that drains, or has drained, with exit code 130.
 *
 * @example A CLI that drains on Ctrl-C
 * ```ts
 * import { ShutdownSignal } from "./shutdown_signal.ts";
 * using shutdown = new ShutdownSignal({ signal: AbortSignal.timeout(10) });
 * await shutdown.wait(); // Ctrl-C, SIGTERM, or (here) the timeout
 * console.log(shutdown.received ?? "aborted"); // "aborted"
 * ```
 */
export class ShutdownSignal implements Disposable {
  #controller = new AbortController();
  #signals: Deno.Signal[];
  #received: Deno.Signal | undefined;
  #handlers: [Deno.Signal, () => void][];
  #signal: AbortSignal;
  #disposed = false;

  /**
   * Starts listening.
   *
   * @param options See {@linkcode ShutdownSignalOptions}.
   */
  constructor(options: ShutdownSignalOptions = {}) {
    this.#signals = options.signals ?? ["SIGINT", "SIGTERM"];
    this.#handlers = this.#signals.map((name) => [name, () => this.#on(name)]);
    for (const [name, handler] of this.#handlers) Deno.addSignalListener(name, handler);
    if (listeningCount++ === 0) setSignalGuard(false);
    this.#signal = options.signal
      ? AbortSignal.any([this.#controller.signal, options.signal])
      : this.#controller.signal;
  }

  /** Aborts on the first shutdown signal (or when the `signal` option aborts). */
  get signal(): AbortSignal {
    return this.#signal;
  }

  /** The OS signal that asked for the shutdown, if one did. */
  get received(): Deno.Signal | undefined {
    return this.#received;
  }

  /**
   * Waits for the shutdown request, keeping the program alive meanwhile (signal listeners
   * alone do not keep Deno's event loop running).
   *
   * @returns A promise that resolves once {@linkcode ShutdownSignal.signal} is aborted.
   */
  wait(): Promise<void> {
    const signal = this.#signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const keepAlive = setInterval(() => {}, 2 ** 30);
      signal.addEventListener("abort", () => {
        clearInterval(keepAlive);
        resolve();
      }, { once: true });
    });
  }

  /**
   * Stops listening and, once no other ShutdownSignal listens, turns the exit guard's signal
   * handling back on. Signals held since the first one came stay held. Idempotent.
   */
  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const [name, handler] of this.#handlers) Deno.removeSignalListener(name, handler);
    if (--listeningCount === 0) setSignalGuard(true);
  }

  #on(name: Deno.Signal): void {
    if (this.#received === undefined) holdSignals(this.#signals);
    this.#received ??= name;
    this.#controller.abort(new DOMException(`received ${name}`, "AbortError"));
  }
}
