/**
 * The lifeline: preloaded into every Deno child started with `Proc.deno`
 * (`deno run --preload <this file>?ppid=<parent pid> ...`). It checks the parent's pid at once
 * and then every 200 ms, and exits the child (code 1, firing `unload` so the child's own exit
 * guard cleans up its jobs) when it is not the expected one, that is when the parent died,
 * even by SIGKILL, and the child was re-parented. The expected pid comes from the URL's `ppid`
 * parameter because a parent that dies while the child is still starting up would otherwise
 * be missed (the first `Deno.ppid` read would already be the new parent's); without the
 * parameter it is the parent's pid at startup.
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

const parent = Number(new URL(import.meta.url).searchParams.get("ppid")) || Deno.ppid;
const check = (): void => {
  if (Deno.ppid !== parent) Deno.exit(1);
};
check();
const timer = setInterval(check, POLL_MS);
Deno.unrefTimer(timer as unknown as number); // a Timeout object in Deno 2.9; unrefTimer takes it
