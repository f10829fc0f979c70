/**
 * `ChunkReader`: reads one of a child's output pipes to its end, passing each chunk of bytes on
 * as it comes (`Proc`'s `output: "chunks"`).
 *
 * @module
 */

import type { OutputReader } from "./output_reader.ts";

/** The size of the buffer a byte stream is read into. */
const BUFFER_BYTES = 65536;

/**
 * Reads a stream to its end, passing each chunk on as it comes. The next chunk is read only once
 * the callback has returned, so a slow consumer slows the child down (its pipe fills) instead of
 * piling chunks up in memory. A byte stream (a child's pipe) is read into one reused buffer, so
 * however much comes through, nothing is allocated per chunk: a chunk is valid only during the
 * callback (copy what you keep). What the callback throws is ignored: the reading must go on, or
 * the pipe would fill and block.
 *
 * @example
 * ```ts
 * import { ChunkReader } from "./chunk_reader.ts";
 * const stream = ReadableStream.from([new Uint8Array([104, 105]), new Uint8Array([33])]);
 * let size = 0;
 * await new ChunkReader(stream, (chunk) => size += chunk.length).done;
 * console.log(size); // 3
 * ```
 */
export class ChunkReader implements OutputReader {
  #reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader;
  #onChunk: (chunk: Uint8Array) => void;
  #ended = false;
  /** Settles when the stream reached its end, or reading stopped. */
  readonly done: Promise<void>;

  /**
   * Starts reading at once.
   *
   * @param stream The pipe.
   * @param onChunk Called with each chunk, in order.
   */
  constructor(stream: ReadableStream<Uint8Array>, onChunk: (chunk: Uint8Array) => void) {
    try {
      this.#reader = stream.getReader({ mode: "byob" });
    } catch {
      this.#reader = stream.getReader(); // not a byte stream
    }
    this.#onChunk = onChunk;
    this.done = this.#pump();
  }

  /** Whether reading has stopped: the end of the stream, a read error, or `cancel`. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Stops reading (closes the pipe); nothing to do once ended. */
  cancel(): Promise<void> {
    if (this.#ended) return Promise.resolve();
    return this.#reader.cancel().catch(() => {});
  }

  async #pump(): Promise<void> {
    try {
      const reader = this.#reader;
      let buffer = new ArrayBuffer(BUFFER_BYTES);
      for (;;) {
        const { done, value } = reader instanceof ReadableStreamBYOBReader
          ? await reader.read(new Uint8Array(buffer))
          : await reader.read();
        if (done || value === undefined) return;
        if (reader instanceof ReadableStreamBYOBReader) buffer = value.buffer as ArrayBuffer;
        try {
          this.#onChunk(value);
        } catch {
          // A failing callback must not stop the reading (the pipe would fill and block).
        }
      }
    } catch {
      // A read error ends the reading.
    } finally {
      // The lock is kept: releasing it costs an exception (the reader's `closed` promise is
      // rejected), and nothing else reads this stream.
      this.#ended = true;
    }
  }
}
