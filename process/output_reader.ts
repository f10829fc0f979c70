/**
 * What `Proc` needs from a reader of one of its child's output pipes, and the drain that ends
 * reading once the child has exited. The readers themselves: `tail_reader.ts` (output kept as
 * a bounded tail) and `line_reader.ts` (output passed on line by line).
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";

/** A reader of one of the child's output pipes. */
export interface OutputReader {
  /** Settles when the pipe reached its end, or reading stopped. */
  readonly done: Promise<void>;
  /** Whether reading has stopped (`done` has settled or is about to): nothing left to cancel. */
  readonly ended: boolean;
  /** Stops reading (closes the pipe). */
  cancel(): Promise<void>;
}

/** Options for {@linkcode drainOutput}. */
export interface DrainOptions {
  /**
   * How long the pipes may stay open, in milliseconds.
   * @default {500}
   */
  timeoutMs?: number;
  /**
   * Where the timeout's timer comes from.
   * @default {systemClock}
   */
  clock?: Clock;
}

/**
 * Waits for output readers to reach the end of their pipes, for at most `timeoutMs`: once the
 * child exited, a grandchild that outlived it may still hold them open. Then closes whatever is
 * still open and waits for every reader to stop.
 *
 * @param readers The readers of the child's pipes.
 * @param options See {@linkcode DrainOptions}.
 * @returns Resolves once every reader has stopped.
 *
 * @example
 * ```ts
 * import { drainOutput } from "./output_reader.ts";
 * import { LineReader } from "./line_reader.ts";
 * const lines: string[] = [];
 * const stream = ReadableStream.from([new TextEncoder().encode("a\nb\n")]);
 * await drainOutput([new LineReader(stream, 100, (line) => lines.push(line))]);
 * console.log(lines); // ["a", "b"]
 * ```
 */
export async function drainOutput(
  readers: readonly OutputReader[],
  options: DrainOptions = {},
): Promise<void> {
  // Usually both pipes reached their end by the time the child's exit is known: no timer then.
  if (readers.every((reader) => reader.ended)) return;
  const clock = options.clock ?? systemClock;
  let timer: TimerId | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = clock.setTimeout(resolve, options.timeoutMs ?? 500);
  });
  await Promise.race([Promise.all(readers.map((reader) => reader.done)), timeout]);
  clock.clearTimeout(timer!);
  await Promise.all(readers.map((reader) => reader.cancel()));
  await Promise.all(readers.map((reader) => reader.done));
}
