/**
 * `JobOutput`: where a command job's output goes — a bounded tail of each stream, kept in memory
 * whatever the output's size, and with an output directory the whole of it in
 * `DIR/<job id>.out` and `.err`.
 *
 * @module
 */

import { ByteTail } from "./byte_tail.ts";
import type { LaunchOutput } from "./job.ts";

/** Which stream a chunk of output came from. */
export type OutputStream = "stdout" | "stderr";

/** Options for {@linkcode JobOutput}. */
export interface JobOutputOptions {
  /**
   * How many trailing bytes of each stream are kept.
   * @default {16384}
   */
  tailBytes?: number | undefined;
  /**
   * A directory where each stream is written in full (`<job id>.out`, `.err`).
   * @default {undefined}
   */
  dir?: string | undefined;
}

/**
 * A file name for a job id: the id itself when it is made of letters, digits, `.`, `_` and `-`
 * (and does not start with `.`); else those characters kept, the others replaced by `_`, and a
 * hash of the id appended, so two ids never share a file.
 *
 * @param id The job's id.
 * @returns A file name without a directory.
 * @example
 * ```ts
 * import { outputFileName } from "./job_output.ts";
 * console.log(outputFileName("j-1")); // j-1
 * console.log(outputFileName("../etc/passwd").startsWith("_.._etc_passwd-")); // true
 * ```
 */
export function outputFileName(id: string): string {
  if (/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(id)) return id;
  let hash = 0x811c9dc5; // FNV-1a, 32 bits
  for (let i = 0; i < id.length; i++) {
    hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193) >>> 0;
  }
  return `_${id.replace(/[^A-Za-z0-9._-]/g, "_")}-${hash.toString(16).padStart(8, "0")}`;
}

/**
 * One job's output: {@linkcode JobOutput.push} each chunk, {@linkcode JobOutput.close} at the
 * end for the tails and file names.
 *
 * @example
 * ```ts
 * import { JobOutput } from "./job_output.ts";
 * const output = new JobOutput("j-1", { tailBytes: 5 });
 * output.push(new TextEncoder().encode("hello world\n"), "stdout");
 * console.log(output.close()); // { stdoutTail: "orld\n", stderrTail: "", stdoutTruncated: true, stderrTruncated: false }
 * ```
 */
export class JobOutput {
  #tails: Record<OutputStream, ByteTail>;
  #files: Record<OutputStream, Deno.FsFile> | undefined;
  #paths: Record<OutputStream, string> | undefined;
  #closed = false;

  /**
   * Opens the files (created, or emptied) when `dir` is given.
   *
   * @param id The job's id (its files' name).
   * @param options See {@linkcode JobOutputOptions}.
   * @throws {Deno.errors.NotFound} Or another `Deno.errors` class, if a file cannot be opened.
   */
  constructor(id: string, options: JobOutputOptions = {}) {
    const tailBytes = options.tailBytes ?? 16384;
    this.#tails = { stdout: new ByteTail(tailBytes), stderr: new ByteTail(tailBytes) };
    if (options.dir === undefined) return;
    const base = `${options.dir.replace(/\/+$/, "")}/${outputFileName(id)}`;
    const paths = { stdout: `${base}.out`, stderr: `${base}.err` };
    const open = (path: string): Deno.FsFile =>
      Deno.openSync(path, { write: true, create: true, truncate: true });
    const stdout = open(paths.stdout);
    try {
      this.#files = { stdout, stderr: open(paths.stderr) };
    } catch (error) {
      stdout.close();
      throw error;
    }
    this.#paths = paths;
  }

  /**
   * Takes a chunk of output: into its tail and its file. A failed write stops that file (the
   * tails go on).
   *
   * @param chunk The bytes.
   * @param stream Which stream.
   */
  push(chunk: Uint8Array, stream: OutputStream): void {
    if (this.#closed) return;
    this.#tails[stream].push(chunk);
    const file = this.#files?.[stream];
    if (file === undefined) return;
    try {
      for (let at = 0; at < chunk.length;) at += file.writeSync(chunk.subarray(at));
    } catch {
      file.close();
      delete this.#files![stream];
    }
  }

  /**
   * Closes the files.
   *
   * @returns The tails, whether each was cut, and the files' paths.
   */
  close(): LaunchOutput {
    if (!this.#closed) {
      this.#closed = true;
      for (const file of Object.values(this.#files ?? {})) file.close();
    }
    const { stdout, stderr } = this.#tails;
    return {
      stdoutTail: stdout.text(),
      stderrTail: stderr.text(),
      stdoutTruncated: stdout.truncated,
      stderrTruncated: stderr.truncated,
      ...(this.#paths && { stdoutFile: this.#paths.stdout, stderrFile: this.#paths.stderr }),
    };
  }
}
