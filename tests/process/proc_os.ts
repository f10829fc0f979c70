/**
 * Test helpers that look at processes through Linux's /proc. A zombie counts as gone: this
 * container's pid 1 does not reap re-parented children, so killed grandchildren stay zombies.
 *
 * @module
 */

/** The state letter and process group of a process, or undefined if it does not exist. */
function stat(pid: number): { state: string; pgrp: number } | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // After "pid (comm) ": state, ppid, pgrp, ... (split always yields a first field).
  const [state = "", , pgrp] = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state, pgrp: Number(pgrp) };
}

/** Whether the process is gone (absent, or a zombie). */
export function isGone(pid: number): boolean {
  const s = stat(pid);
  return s === undefined || s.state === "Z";
}

/** The pids of the live (non-zombie) processes of a process group. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    const s = stat(pid);
    if (s && s.pgrp === pgid && s.state !== "Z") members.push(pid);
  }
  return members;
}

/** Polls `check` every 20 ms until it returns true or `timeoutMs` passes; returns the last result. */
export async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}
