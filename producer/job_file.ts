/**
 * `submit --file`: a file of jobs, one JSON payload a line, read and checked before anything is
 * sent.
 *
 * @module
 */

import { resolve } from "node:path";
import { plural } from "../cli/mod.ts";
import { type CommandSpec, validateCommandSpec } from "../scheduler/command_spec.ts";
import type { ReportIo } from "./job_exit.ts";

/**
 * Reads a file of jobs (`submit --file`): one JSON payload a line (blank lines skipped), the
 * `defaults` (the flags) filling in what a line leaves out, a relative `cwd` made absolute from
 * `base`. Every bad line is said with its number (at most 20), and then nothing is returned.
 *
 * @param path The file (relative to `base`).
 * @param defaults The fields a line leaves out.
 * @param base The directory a relative path or `cwd` is resolved from.
 * @param io Says the bad lines.
 * @returns The validated jobs, or undefined when the file is unreadable, empty or has a bad line.
 * @example
 * ```ts
 * import { readJobFile } from "./job_file.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/j.jsonl`, '{"command":["true"]}\n{"command":[]}\n');
 * const notes: string[] = [];
 * const io = { note: (line: string) => notes.push(line) };
 * console.log(await readJobFile("j.jsonl", { priority: 5 }, dir, io)); // undefined
 * console.log(notes[0]); // j.jsonl:2: command must be a non-empty array of strings, got an array
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readJobFile(
  path: string,
  defaults: Record<string, unknown>,
  base: string,
  io: Pick<ReportIo, "note">,
): Promise<CommandSpec[] | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(resolve(base, path));
  } catch (error) {
    io.note(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
  const specs: CommandSpec[] = [];
  const bad: string[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    const reason = parseLine(line, defaults, base, specs);
    if (reason !== undefined) bad.push(`${path}:${i + 1}: ${reason}`);
  }
  if (bad.length === 0 && specs.length === 0) bad.push(`${path}: no jobs in it`);
  for (const line of bad.slice(0, 20)) io.note(line);
  if (bad.length > 20) io.note(`... and ${plural(bad.length - 20, "more bad line")}`);
  if (bad.length > 0) io.note("nothing submitted");
  return bad.length > 0 ? undefined : specs;
}

/** One line of `--file`: pushes its spec, or returns why it is bad. */
function parseLine(
  line: string,
  defaults: Record<string, unknown>,
  base: string,
  specs: CommandSpec[],
): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return `not JSON (${error instanceof Error ? error.message : String(error)})`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "must be a JSON object (a job's payload)";
  }
  const spec: Record<string, unknown> = { ...defaults, ...value };
  if (typeof spec.cwd === "string" && !spec.cwd.startsWith("/")) spec.cwd = resolve(base, spec.cwd);
  const check = validateCommandSpec(spec);
  if (!check.ok) return check.reason;
  specs.push(check.value);
  return undefined;
}
