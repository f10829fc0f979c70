/**
 * The lifeline: preloaded into every Deno child started with `Proc.deno`
 * (`deno run --preload <this file> ...`). It checks the parent's pid every 200 ms and exits the
 * child (code 1, firing `unload` so the child's own exit guard cleans up its jobs) when it
 * changes, that is when the parent died, even by SIGKILL, and the child was re-parented.
 *
 * It needs no permission (`Deno.ppid` is free, and a preloaded file is read without
 * `--allow-read`), and its interval is unref'd, so it never keeps the child alive.
 *
 * Importing it from anywhere else makes that program exit when its own parent dies.
 *
 * @module
 */

/** How often the parent's pid is checked, in milliseconds. */
const POLL_MS = 200;

const parent = Deno.ppid;
const timer = setInterval(() => {
  if (Deno.ppid !== parent) Deno.exit(1);
}, POLL_MS);
Deno.unrefTimer(timer as unknown as number); // a Timeout object in Deno 2.9; unrefTimer takes it
