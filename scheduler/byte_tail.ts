/**
 * `ByteTail`: the last N bytes of a stream of chunks, in a fixed buffer, whatever the stream's
 * size; read back as valid UTF-8 that starts at a character boundary.
 *
 * @module
 */

/**
 * Keeps the last `max` bytes pushed into it, in one buffer of `max` bytes.
 *
 * @example
 * ```ts
 * import { ByteTail } from "./byte_tail.ts";
 * const tail = new ByteTail(4);
 * tail.push(new TextEncoder().encode("hello é"));
 * console.log(tail.text(), tail.truncated); // "o é" true
 * ```
 */
export class ByteTail {
  #buffer: Uint8Array;
  #end = 0;
  #total = 0;

  /**
   * @param max How many trailing bytes to keep, an integer >= 0.
   * @throws {RangeError} If `max` is not an integer >= 0.
   */
  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new RangeError(`Cannot create ByteTail: 'max' must be an integer >= 0, got ${max}`);
    }
    this.#buffer = new Uint8Array(max);
  }

  /** Bytes pushed so far. */
  get total(): number {
    return this.#total;
  }

  /** Whether more was pushed than is kept. */
  get truncated(): boolean {
    return this.#total > this.#buffer.length;
  }

  /**
   * Adds a chunk (only its part that can still be in the tail is copied).
   *
   * @param chunk The next bytes of the stream.
   */
  push(chunk: Uint8Array): void {
    this.#total += chunk.length;
    const size = this.#buffer.length;
    if (size === 0) return;
    const part = chunk.length > size ? chunk.subarray(chunk.length - size) : chunk;
    const first = Math.min(part.length, size - this.#end);
    this.#buffer.set(part.subarray(0, first), this.#end);
    this.#buffer.set(part.subarray(first), 0);
    this.#end = (this.#end + part.length) % size;
  }

  /**
   * The kept bytes, decoded as UTF-8 (invalid bytes replaced by U+FFFD); when the tail is cut,
   * it starts at the first character boundary, not in the middle of a character.
   *
   * @returns The text.
   */
  text(): string {
    const size = this.#buffer.length;
    let bytes: Uint8Array;
    if (this.#total < size) {
      bytes = this.#buffer.subarray(0, this.#total);
    } else {
      bytes = new Uint8Array(size);
      bytes.set(this.#buffer.subarray(this.#end), 0);
      bytes.set(this.#buffer.subarray(0, this.#end), size - this.#end);
    }
    let start = 0;
    if (this.truncated) {
      // skip at most 3 continuation bytes (10xxxxxx) of a character cut at the front
      while (start < 3 && start < bytes.length && (bytes[start]! & 0xc0) === 0x80) start++;
    }
    return new TextDecoder().decode(bytes.subarray(start));
  }
}
