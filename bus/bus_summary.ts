/**
 * The bus's periodic one-line summary (`--summary-every S`): waiting, running, schedulers, and
 * the jobs finished since the last line by outcome, printed only when something changed.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import type { BusServer } from "./server.ts";
import type { BusJobEvent } from "./server_events.ts";

/** What a summary line says, also given as the line's fields. */
export type BusSummaryFields = {
  /** Jobs waiting in the bus. */
  waiting: number;
  /** Jobs at protocol 2 schedulers. */
  running: number;
  /** Registered schedulers (both protocols). */
  schedulers: number;
  /** Jobs finished since the last line, by outcome (`finished_succeeded`…). */
  [finished: `finished_${string}`]: number;
};

/** Options for {@linkcode BusSummary}. */
export interface BusSummaryOptions {
  /** Seconds between checks (> 0). */
  everyS: number;
  /** Prints a line. */
  log: (line: string, fields: BusSummaryFields) => void;
  /**
   * Where the timer comes from.
   * @default {systemClock}
   */
  clock?: Clock;
}

/**
 * Every `everyS` seconds, logs one line when anything changed since the last one.
 *
 * @example
 * ```ts
 * import { BusServer } from "./server.ts";
 * import { BusSummary } from "./bus_summary.ts";
 * const bus = new BusServer({ port: 0 });
 * const summary = new BusSummary(bus, { everyS: 10, log: (line) => console.log(line) });
 * console.log(summary.line()); // 0 waiting, 0 running, 0 schedulers
 * summary.close();
 * await bus.close();
 * ```
 */
export class BusSummary {
  readonly #server: BusServer;
  readonly #clock: Clock;
  readonly #everyMs: number;
  readonly #log: BusSummaryOptions["log"];
  readonly #finished = new Map<string, number>();
  #last = "";
  #timer: TimerId | undefined;
  readonly #onJob = ({ job }: BusJobEvent): void => {
    if (job.final) this.#finished.set(job.state, (this.#finished.get(job.state) ?? 0) + 1);
  };

  /**
   * Starts the timer.
   *
   * @param server The bus.
   * @param options See {@linkcode BusSummaryOptions}.
   * @throws {RangeError} When `everyS` is not a positive number.
   */
  constructor(server: BusServer, options: BusSummaryOptions) {
    if (!(options.everyS > 0) || !Number.isFinite(options.everyS)) {
      throw new RangeError(`everyS must be a positive number of seconds, got ${options.everyS}`);
    }
    this.#server = server;
    this.#clock = options.clock ?? systemClock;
    this.#everyMs = options.everyS * 1000;
    this.#log = options.log;
    server.addEventListener("job", this.#onJob);
    this.#last = this.#snapshot().state;
    this.#schedule();
  }

  /**
   * The line as it would be printed now (the finished counts since the last printed line).
   *
   * @returns `"3 waiting, 2 running, 1 scheduler; finished: 4 succeeded, 1 failed"`.
   * @example
   * ```ts
   * import { BusServer } from "./server.ts";
   * import { BusSummary } from "./bus_summary.ts";
   * const bus = new BusServer({ port: 0 });
   * const summary = new BusSummary(bus, { everyS: 1, log: () => {} });
   * console.log(summary.line().startsWith("0 waiting")); // true
   * summary.close();
   * await bus.close();
   * ```
   */
  line(): string {
    return this.#snapshot().line;
  }

  /**
   * Stops the timer and the listener. Idempotent.
   *
   * @example
   * ```ts
   * import { BusServer } from "./server.ts";
   * import { BusSummary } from "./bus_summary.ts";
   * const bus = new BusServer({ port: 0 });
   * new BusSummary(bus, { everyS: 1, log: () => {} }).close();
   * await bus.close();
   * ```
   */
  close(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#server.removeEventListener("job", this.#onJob);
  }

  #schedule(): void {
    this.#timer = this.#clock.setTimeout(() => {
      this.#tick();
      this.#schedule();
    }, this.#everyMs);
  }

  #tick(): void {
    const { line, fields, state } = this.#snapshot();
    if (state === this.#last && this.#finished.size === 0) return;
    this.#last = state;
    this.#finished.clear();
    this.#log(line, fields);
  }

  #snapshot(): { line: string; fields: BusSummaryFields; state: string } {
    const status = this.#server.status();
    const health = this.#server.health();
    const running = status.schedulers.reduce((n, s) => n + s.running.length, 0);
    const schedulers = health.schedulers.seed + health.schedulers.v2;
    const fields: BusSummaryFields = { waiting: status.queue.length, running, schedulers };
    const outcomes = [...this.#finished].sort(([a], [b]) => a.localeCompare(b));
    for (const [outcome, n] of outcomes) fields[`finished_${outcome}`] = n;
    const state = `${status.queue.length} waiting, ${running} running, ${schedulers} ${
      schedulers === 1 ? "scheduler" : "schedulers"
    }`;
    const finished = outcomes.map(([outcome, n]) => `${n} ${outcome}`).join(", ");
    return { line: finished ? `${state}; finished: ${finished}` : state, fields, state };
  }
}
