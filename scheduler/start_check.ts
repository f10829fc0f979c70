/**
 * The checks a scheduler makes before it starts a command job: its working directory exists and
 * is a directory, and its executable is found (on `PATH` for a bare name) and executable. A job
 * that fails one never runs: it ends `failed` with the reason as its result's `startError`.
 *
 * @module
 */

/** Options for {@linkcode startError}. */
export interface StartCheckOptions {
  /**
   * The job's working directory (absolute); `undefined` is the scheduler's.
   * @default {undefined}
   */
  cwd?: string | undefined;
  /**
   * The `PATH` a bare name is looked up on (the job's).
   * @default {""}
   */
  path?: string | undefined;
}

/**
 * Why a command cannot start, if it cannot: `"no such cwd: /x"`, `"cwd is not a directory:
 * /x"`, `"no such executable: ffmpeg"`, `"permission denied: ./run.sh"`, `"not an executable
 * file: /tmp"`. What the scheduler may not look at (no read permission) is taken as fine: the
 * spawn then says.
 *
 * @param executable The job's `command[0]`.
 * @param options See {@linkcode StartCheckOptions}.
 * @returns The reason, or `undefined` when the command can start.
 * @example
 * ```ts
 * import { startError } from "./start_check.ts";
 * console.log(startError("sh", { path: "/usr/bin:/bin" })); // undefined
 * console.log(startError("no-such-tool", { path: "/usr/bin:/bin" })); // no such executable: no-such-tool
 * console.log(startError("sh", { cwd: "/no/such/dir", path: "/bin" })); // no such cwd: /no/such/dir
 * ```
 */
export function startError(
  executable: string,
  options: StartCheckOptions = {},
): string | undefined {
  const { cwd, path = "" } = options;
  if (cwd !== undefined) {
    const info = stat(cwd);
    if (info === "missing") return `no such cwd: ${cwd}`;
    if (info !== "unknown" && !info.isDirectory) return `cwd is not a directory: ${cwd}`;
  }
  if (executable.includes("/")) {
    const full = executable.startsWith("/") ? executable : `${cwd ?? Deno.cwd()}/${executable}`;
    const info = stat(full);
    if (info === "missing") return `no such executable: ${executable}`;
    if (info === "unknown") return undefined;
    if (!info.isFile) return `not an executable file: ${executable}`;
    return isExecutable(info) ? undefined : `permission denied: ${executable}`;
  }
  let denied = false;
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    const info = stat(`${dir}/${executable}`);
    if (info === "unknown") return undefined;
    if (info === "missing" || !info.isFile) continue;
    if (isExecutable(info)) return undefined;
    denied = true;
  }
  return denied ? `permission denied: ${executable}` : `no such executable: ${executable}`;
}

function stat(path: string): Deno.FileInfo | "missing" | "unknown" {
  try {
    return Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return "missing";
    }
    return "unknown"; // no permission to look (Deno's or the OS's): let the spawn tell
  }
}

function isExecutable(info: Deno.FileInfo): boolean {
  return info.mode === null || (info.mode & 0o111) !== 0;
}
