/**
 * `TailReader`: reads one of a child's output pipes to its end, keeping only its last bytes
 * (`Proc`'s `output: "capture"`).
 *
 * @module
 */

import type { OutputReader } from "./output_reader.ts";

/**
 * Reads a stream to its end, keeping only its last `max` bytes.
 *
 * @example
 * ```ts
 * import { TailReader } from "./tail_reader.ts";
 * const stream = ReadableStream.from([new TextEncoder().encode("hello world")]);
 * const reader = new TailReader(stream, 5);
 * await reader.done;
 * console.log(reader.text()); // "world"
 * ```
 */
export class TailReader implements OutputReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #max: number;
  #chunks: Uint8Array[] = [];
  #size = 0;
  #ended = false;
  /** Settles when the stream reached its end, or reading stopped. */
  readonly done: Promise<void>;

  /**
   * Starts reading at once.
   *
   * @param stream The pipe.
   * @param max How many trailing bytes to keep.
   */
  constructor(stream: ReadableStream<Uint8Array>, max: number) {
    this.#reader = stream.getReader();
    this.#max = max;
    this.done = this.#pump();
  }

  /** Whether reading has stopped: the end of the stream, a read error, or `cancel`. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Stops reading (closes the pipe); what was read so far is kept. Nothing to do once ended. */
  cancel(): Promise<void> {
    if (this.#ended) return Promise.resolve();
    return this.#reader.cancel().catch(() => {});
  }

  /** The kept tail, decoded as UTF-8 (a character cut at the start becomes U+FFFD). */
  text(): string {
    const bytes = new Uint8Array(this.#size);
    let offset = 0;
    for (const chunk of this.#chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    const start = Math.max(0, this.#size - this.#max);
    return new TextDecoder().decode(bytes.subarray(start));
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const { done, value } = await this.#reader.read();
        if (done) return;
        this.#chunks.push(value);
        this.#size += value.length;
        // Drop whole chunks from the front while the rest still holds `max` bytes (`max` >= 1,
        // so the last chunk is never dropped: `#chunks[0]` exists).
        while (this.#size - this.#chunks[0]!.length >= this.#max) {
          this.#size -= this.#chunks.shift()!.length;
        }
      }
    } catch {
      // A read error ends the capture; the tail read so far is kept.
    } finally {
      // The lock is kept: releasing it costs an exception, and nothing else reads this stream.
      this.#ended = true;
    }
  }
}
