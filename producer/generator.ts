/**
 * The producer's seeded random source: which jobs to submit and how long to wait between them.
 *
 * @module
 */

import type { SleeperJobPayload } from "../bus/protocol.ts";

/** An inclusive range of integers, `[low, high]`. */
export type IntRange = readonly [low: number, high: number];

/** Options for {@linkcode JobGenerator}. */
export interface JobGeneratorOptions {
  /**
   * Seed of the pseudo-random sequence: the same seed gives the same jobs and delays.
   * @default {a random 32-bit seed, see JobGenerator.seed}
   */
  seed?: number;
  /**
   * Priorities are drawn uniformly from this inclusive range, within 0..10.
   * @default {[0, 10]}
   */
  priority?: IntRange;
  /**
   * Runtimes in whole seconds are drawn uniformly from this inclusive range (low >= 1).
   * @default {[3, 15]}
   */
  runtimeS?: IntRange;
  /**
   * Seconds between jobs; with `gauss`, the mean of the wait.
   * @default {5}
   */
  periodS?: number;
  /**
   * Wait a gaussian time (mean `periodS`, standard deviation `sigmaS`) instead of a fixed one.
   * @default {false}
   */
  gauss?: boolean;
  /**
   * Standard deviation of the gaussian wait, in seconds.
   * @default {2}
   */
  sigmaS?: number;
}

/** The shortest gaussian wait, in milliseconds (the seed's floor of 0.005 s). */
export const MIN_GAUSS_DELAY_MS = 5;

/**
 * The mulberry32 pseudo-random generator: small, fast and good enough for test workloads (not
 * for cryptography).
 *
 * @param seed Any number; it is truncated to 32 bits.
 * @returns A function that returns uniform numbers in `[0, 1)`.
 *
 * @example
 * ```ts
 * import { mulberry32 } from "./generator.ts";
 * const a = mulberry32(42), b = mulberry32(42);
 * console.log(a() === b()); // true
 * ```
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A standard normal deviate by the Box-Muller transform.
 *
 * @param random A source of uniform numbers in `[0, 1)`; two are drawn.
 * @returns A number from the normal distribution with mean 0 and standard deviation 1.
 *
 * @example
 * ```ts
 * import { gaussian, mulberry32 } from "./generator.ts";
 * const z = gaussian(mulberry32(1));
 * console.log(Number.isFinite(z)); // true
 * ```
 */
export function gaussian(random: () => number): number {
  const u1 = 1 - random(); // in (0, 1]: the logarithm stays finite
  const u2 = random();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/**
 * Draws the producer's jobs and the waits between them from a seeded generator. Jobs and waits
 * come from two separate streams of the same seed, so a seed gives the same jobs whether the
 * waits are fixed or gaussian.
 *
 * @example
 * ```ts
 * import { JobGenerator } from "./generator.ts";
 * const generator = new JobGenerator({ seed: 7, gauss: true, periodS: 1, sigmaS: 0.5 });
 * const job = generator.nextJob(); // e.g. { priority: 4, runtime: 9 }
 * console.log(job.priority >= 0 && job.priority <= 10); // true
 * console.log(generator.nextDelayMs() >= 5); // true
 * ```
 */
export class JobGenerator {
  #seed: number;
  #jobs: () => number;
  #delays: () => number;
  #priority: IntRange;
  #runtimeS: IntRange;
  #periodMs: number;
  #gauss: boolean;
  #sigmaMs: number;

  /**
   * Creates a generator.
   *
   * @param options See {@linkcode JobGeneratorOptions}.
   * @throws {RangeError} If a range is not integers with `low <= high` within its bounds, or
   * `periodS` / `sigmaS` is negative or not finite.
   */
  constructor(options: JobGeneratorOptions = {}) {
    this.#seed = (options.seed ?? randomUint32()) >>> 0;
    this.#priority = checkRange("priority", options.priority ?? [0, 10], 0, 10);
    this.#runtimeS = checkRange("runtimeS", options.runtimeS ?? [3, 15], 1, Infinity);
    const periodS = options.periodS ?? 5;
    const sigmaS = options.sigmaS ?? 2;
    for (const [name, value] of [["periodS", periodS], ["sigmaS", sigmaS]] as const) {
      if (!Number.isFinite(value) || value < 0) {
        throw new RangeError(
          `Cannot create JobGenerator: '${name}' must be a finite number >= 0, got ${value}`,
        );
      }
    }
    this.#periodMs = periodS * 1000;
    this.#sigmaMs = sigmaS * 1000;
    this.#gauss = options.gauss ?? false;
    this.#jobs = mulberry32(this.#seed);
    this.#delays = mulberry32(this.#seed ^ 0x9e3779b9);
  }

  /** The seed in use (a random one when none was given): pass it back to replay the run. */
  get seed(): number {
    return this.#seed;
  }

  /**
   * Draws the next job.
   *
   * @returns A wire payload: a priority and a runtime in whole seconds, within the ranges.
   */
  nextJob(): SleeperJobPayload {
    const priority = uniformInt(this.#jobs, this.#priority);
    const runtime = uniformInt(this.#jobs, this.#runtimeS);
    return { priority, runtime };
  }

  /**
   * Draws the wait before the next job.
   *
   * @returns The period in milliseconds; with `gauss`, a gaussian draw, never below
   * {@linkcode MIN_GAUSS_DELAY_MS}.
   */
  nextDelayMs(): number {
    if (!this.#gauss) return this.#periodMs;
    const drawn = this.#periodMs + this.#sigmaMs * gaussian(this.#delays);
    return Math.max(MIN_GAUSS_DELAY_MS, drawn);
  }
}

/** A random 32-bit unsigned integer from the platform's CSPRNG. */
function randomUint32(): number {
  const [value = 0] = crypto.getRandomValues(new Uint32Array(1)); // one element: the default is never used
  return value;
}

function uniformInt(random: () => number, [low, high]: IntRange): number {
  return low + Math.floor(random() * (high - low + 1));
}

function checkRange(name: string, range: IntRange, min: number, max: number): IntRange {
  const [low, high] = range;
  if (!Number.isInteger(low) || !Number.isInteger(high) || low < min || high > max || low > high) {
    const bounds = max === Infinity ? `>= ${min}` : `within ${min}..${max}`;
    throw new RangeError(
      `Cannot create JobGenerator: '${name}' must be integers low <= high ${bounds}, got ${low}-${high}`,
    );
  }
  return [low, high];
}
