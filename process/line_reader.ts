/**
 * `LineReader`: reads one of a child's output pipes to its end, passing each line on as it
 * completes (`Proc`'s `output: "lines"`).
 *
 * @module
 */

import type { OutputReader } from "./output_reader.ts";

/**
 * Reads a stream to its end, passing each line on as it completes, without its line break (and
 * a trailing `\r`); a line longer than `max` characters is passed on in pieces of `max`. What
 * the callback throws is ignored: the reading must go on, or the pipe would fill and block.
 *
 * @example
 * ```ts
 * import { LineReader } from "./line_reader.ts";
 * const stream = ReadableStream.from([new TextEncoder().encode("one\r\ntwo\nthr"), new TextEncoder().encode("ee")]);
 * const lines: string[] = [];
 * await new LineReader(stream, 100, (line) => lines.push(line)).done;
 * console.log(lines); // ["one", "two", "three"]
 * ```
 */
export class LineReader implements OutputReader {
  #reader: ReadableStreamDefaultReader<string>;
  #max: number;
  #onLine: (line: string) => void;
  #partial = "";
  #ended = false;
  /** Settles when the stream reached its end, or reading stopped. */
  readonly done: Promise<void>;

  /**
   * Starts reading at once.
   *
   * @param stream The pipe.
   * @param max The longest line passed on in one piece.
   * @param onLine Called with each line (or piece).
   */
  constructor(stream: ReadableStream<Uint8Array>, max: number, onLine: (line: string) => void) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    this.#max = max;
    this.#onLine = onLine;
    this.done = this.#pump();
  }

  /** Whether reading has stopped: the end of the stream, a read error, or `cancel`. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Stops reading (closes the pipe); a partial last line is still passed on. */
  cancel(): Promise<void> {
    if (this.#ended) return Promise.resolve();
    return this.#reader.cancel().catch(() => {});
  }

  #emit(line: string): void {
    if (line.endsWith("\r")) line = line.slice(0, -1);
    for (let start = 0; start === 0 || start < line.length; start += this.#max) {
      try {
        this.#onLine(line.slice(start, start + this.#max));
      } catch {
        // A failing line callback must not stop the reading (the pipe would fill and block).
      }
    }
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const { done, value } = await this.#reader.read();
        if (done) break;
        const lines = (this.#partial + value).split("\n");
        this.#partial = lines.pop()!;
        for (const line of lines) this.#emit(line);
        while (this.#partial.length > this.#max) {
          this.#emit(this.#partial.slice(0, this.#max));
          this.#partial = this.#partial.slice(this.#max);
        }
      }
    } catch {
      // A read error ends the reading; what was complete was passed on.
    } finally {
      if (this.#partial !== "") this.#emit(this.#partial);
      this.#partial = "";
      this.#reader.releaseLock();
      this.#ended = true;
    }
  }
}
