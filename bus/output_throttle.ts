/**
 * `OutputThrottle`: a scheduler's stream of its running jobs' output to the bus, for jobs
 * submitted with `follow: true` — coalesced (one message per job and stream every 100 ms) and
 * bounded (at most 64 KiB per job per second; what is beyond is dropped and counted, then said
 * in one message with `dropped`), so a chatty job cannot flood the bus.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import type { OutputMessage } from "./protocol.ts";

/** Options for {@linkcode OutputThrottle}. */
export interface OutputThrottleOptions {
  /**
   * How long output is gathered before it is sent, ms.
   * @default {100}
   */
  intervalMs?: number;
  /**
   * Most bytes sent per job per second (per window of 1 s).
   * @default {65536}
   */
  bytesPerSecond?: number;
  /**
   * Where time comes from.
   * @default {systemClock}
   */
  clock?: Clock;
}

/** One stream of one job: bytes waiting to be sent, its decoder, bytes dropped. */
interface StreamState {
  pending: Uint8Array[];
  decoder: TextDecoder;
  dropped: number;
}

/** One job: its rate window and its two streams. */
interface JobState {
  windowStart: number;
  used: number;
  streams: Record<OutputMessage["stream"], StreamState>;
}

/** The length of a rate window, ms. */
const WINDOW_MS = 1000;

/**
 * Gathers jobs' output and sends it as `output` messages, coalesced and rate-limited.
 *
 * @example
 * ```ts
 * import { OutputThrottle } from "./output_throttle.ts";
 * const sent: unknown[] = [];
 * const throttle = new OutputThrottle((message) => sent.push(message));
 * throttle.push("j-1", "stdout", new TextEncoder().encode("hel"));
 * throttle.push("j-1", "stdout", new TextEncoder().encode("lo\n"));
 * throttle.end("j-1"); // the job ended: what it has is sent now
 * console.log(sent); // [{ cmd: "output", id: "j-1", stream: "stdout", data: "hello\n" }]
 * throttle.close();
 * ```
 */
export class OutputThrottle {
  #send: (message: OutputMessage) => void;
  #intervalMs: number;
  #bytesPerSecond: number;
  #clock: Clock;
  #jobs = new Map<string, JobState>();
  #timer: TimerId | undefined;

  /**
   * @param send Sends one message to the bus.
   * @param options See {@linkcode OutputThrottleOptions}.
   */
  constructor(send: (message: OutputMessage) => void, options: OutputThrottleOptions = {}) {
    this.#send = send;
    this.#intervalMs = options.intervalMs ?? 100;
    this.#bytesPerSecond = options.bytesPerSecond ?? 65536;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Takes a chunk of a job's output (copied: the chunk may be reused once this returns). What is
   * beyond the job's rate is dropped and counted.
   *
   * @param id The job.
   * @param stream Which stream.
   * @param chunk The bytes.
   */
  push(id: string, stream: OutputMessage["stream"], chunk: Uint8Array): void {
    const now = this.#clock.now();
    let job = this.#jobs.get(id);
    if (job === undefined) {
      job = { windowStart: now, used: 0, streams: { stdout: newStream(), stderr: newStream() } };
      this.#jobs.set(id, job);
    }
    if (now - job.windowStart >= WINDOW_MS) {
      job.windowStart = now;
      job.used = 0;
    }
    const take = Math.min(chunk.length, this.#bytesPerSecond - job.used);
    const state = job.streams[stream];
    if (take > 0) {
      state.pending.push(chunk.slice(0, take));
      job.used += take;
    }
    state.dropped += chunk.length - take;
    this.#arm();
  }

  /**
   * A job ended: sends what it still has (and what was dropped), then forgets it.
   *
   * @param id The job.
   */
  end(id: string): void {
    const job = this.#jobs.get(id);
    if (job === undefined) return;
    this.#jobs.delete(id);
    this.#flushJob(id, job, true);
  }

  /** Stops the timer and forgets every job, sending nothing more. */
  close(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#jobs.clear();
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      let more = false;
      for (const [id, job] of this.#jobs) more = this.#flushJob(id, job, false) || more;
      if (more) this.#arm();
    }, this.#intervalMs);
  }

  /** Sends a job's pending output; returns whether a dropped count still waits to be said. */
  #flushJob(id: string, job: JobState, ending: boolean): boolean {
    const windowOver = this.#clock.now() - job.windowStart >= WINDOW_MS;
    let waiting = false;
    for (const stream of ["stdout", "stderr"] as const) {
      const state = job.streams[stream];
      if (state.pending.length > 0 || ending) {
        const data = state.decoder.decode(concat(state.pending), { stream: !ending });
        state.pending = [];
        if (data !== "") this.#send({ cmd: "output", id, stream, data });
      }
      if (state.dropped > 0 && (ending || windowOver)) {
        this.#send({ cmd: "output", id, stream, data: "", dropped: state.dropped });
        state.dropped = 0;
      }
      waiting ||= state.dropped > 0;
    }
    return waiting;
  }
}

function newStream(): StreamState {
  return { pending: [], decoder: new TextDecoder(), dropped: 0 };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}
