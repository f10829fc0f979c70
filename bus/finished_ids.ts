/**
 * A bounded memory of finished job ids: the bus keeps a finished job's given id (and its final
 * state) for idempotency, forgetting the oldest beyond a limit.
 *
 * @module
 */

/**
 * A ring of the most recent ids: {@linkcode FinishedIds.remember} adds one and returns the
 * oldest once the ring is full, for the caller to forget.
 *
 * @example
 * ```ts
 * import { FinishedIds } from "./finished_ids.ts";
 * const ids = new FinishedIds(2);
 * console.log(ids.remember("a"), ids.remember("b"), ids.remember("c")); // undefined undefined a
 * ```
 */
export class FinishedIds {
  #ring: string[] = [];
  #oldest = 0; // the ring's oldest entry once full
  #limit: number;

  /**
   * Creates an empty ring.
   *
   * @param limit How many ids to remember.
   * @throws {RangeError} If `limit` is not a positive integer.
   */
  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(
        `Cannot create FinishedIds: 'limit' must be a positive integer, got ${limit}`,
      );
    }
    this.#limit = limit;
  }

  /**
   * Remembers an id.
   *
   * @param id The id of a job that just finished.
   * @returns The oldest id, forgotten to make room; `undefined` while the ring is not full.
   */
  remember(id: string): string | undefined {
    const ring = this.#ring;
    if (ring.length < this.#limit) {
      ring.push(id);
      return undefined;
    }
    const forgotten = ring[this.#oldest];
    ring[this.#oldest] = id;
    this.#oldest = (this.#oldest + 1) % ring.length;
    return forgotten;
  }
}
