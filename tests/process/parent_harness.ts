/**
 * Runs `tests/fixtures/proc_parent.ts` as a child of the test and reads the pids of the jobs it
 * started (its first line of output).
 *
 * @module
 */

const PARENT = new URL("../fixtures/proc_parent.ts", import.meta.url);

/** A running parent fixture. */
export interface ParentRun {
  /** The parent's pid. */
  pid: number;
  /** The pids of the jobs it started. */
  jobs: number[];
  /** Resolves to the parent's exit status once its output is drained. */
  status: Promise<Deno.CommandStatus>;
}

/** Starts the parent fixture in `mode` and waits for the pids of its jobs. */
export async function startParent(mode: string): Promise<ParentRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "--no-check", "-A", PARENT.href, mode],
    stdin: "null",
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) break;
    text += value;
  }
  const rest = (async () => {
    while (!(await reader.read()).done);
  })();
  const status = rest.then(() => child.status);
  const line = text.split("\n")[0];
  if (!line) {
    await status;
    throw new Error("the parent fixture printed no pids");
  }
  return { pid: child.pid, jobs: JSON.parse(line), status };
}
