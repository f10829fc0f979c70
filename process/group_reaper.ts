/**
 * `GroupReaper`: no orphans after the parent's death, even by SIGKILL. One small helper process
 * (`/bin/sh`, a few hundred KB) per parent, in a session of its own and deaf to INT, TERM and
 * HUP, is told each job's process group over a pipe as it starts and ends; when the pipe closes
 * — the parent closed it, or died, however — it sends SIGKILL to every group still listed, then
 * exits.
 *
 * Why not the alternatives (measured in `bench/proc_bench.ts`): `setpriv --pdeathsig KILL` per
 * job costs a second exec per spawn and kills only the direct child (and fires when the
 * spawning *thread* exits); Deno's `detached: true` forks the whole parent, whose cost grows
 * with its heap. The reaper costs one line written to a pipe per start and per end.
 *
 * @module
 */

/** The reaper's program: reads `+PGID` / `-PGID` lines, kills what is listed at EOF. */
const SCRIPT = `trap '' INT TERM HUP PIPE
g=' '
while read -r line; do
  id=\${line#?}
  case $line in
    +*) g="$g$id " ;;
    -*) case $g in *" $id "*) g="\${g%% $id *} \${g#* $id }" ;; esac ;;
  esac
done
for id in $g; do kill -9 -$id 2>/dev/null; done
`;

/** Options for {@linkcode GroupReaper}. */
export interface GroupReaperOptions {
  /**
   * util-linux's `setsid`, to start the reaper in a session of its own (so a signal to the
   * parent's process group or terminal does not reach it); `undefined` uses Deno's `detached`.
   * @default {"/usr/bin/setsid"}
   */
  setsid?: string | undefined;
  /**
   * The shell that runs the reaper.
   * @default {"/bin/sh"}
   */
  shell?: string;
}

/**
 * Kills the process groups it was told about when this process dies or closes it. Started by
 * {@linkcode GroupReaper.start}, or on the first {@linkcode GroupReaper.watch}.
 *
 * Telling it is a write on a pipe. With the permission to open `/proc/<pid>/fd/0` (Deno asks
 * `--allow-all` for it) the write is synchronous: a group is listed before `watch` returns.
 * Otherwise it is asynchronous, done within the event loop's next turn (≈ 0.1 ms once the pipe
 * has been written to, ≈ 1 ms for its first write, which {@linkcode GroupReaper.start} makes):
 * a SIGKILL of this process in that instant leaves that one job behind.
 *
 * @example
 * ```ts
 * import { GroupReaper } from "./group_reaper.ts";
 * await using reaper = new GroupReaper();
 * const child = new Deno.Command("/usr/bin/setsid", { args: ["sleep", "30"] }).spawn();
 * reaper.watch(child.pid); // killed at the latest when this process dies
 * await reaper.close(); // closing kills what is still watched
 * console.log((await child.status).signal); // "SIGKILL"
 * ```
 */
export class GroupReaper implements AsyncDisposable {
  #setsid: string | undefined;
  #shell: string;
  #child: Deno.ChildProcess | undefined;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #pipe: Deno.FsFile | undefined;
  #encoder = new TextEncoder();
  #watched = new Set<number>();
  #closing: Promise<void> | undefined;
  /** `-PGID` lines not written yet: written together, before the next `+` line or in a microtask. */
  #unwatched = "";

  /**
   * Prepares the reaper; no process starts until the first {@linkcode GroupReaper.watch}.
   *
   * @param options See {@linkcode GroupReaperOptions}.
   */
  constructor(options: GroupReaperOptions = {}) {
    this.#setsid = "setsid" in options ? options.setsid : "/usr/bin/setsid";
    this.#shell = options.shell ?? "/bin/sh";
  }

  /** The reaper process's pid once started. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** How many process groups are watched now. */
  get watching(): number {
    return this.#watched.size;
  }

  /**
   * Starts the reaper process now (instead of on the first {@linkcode GroupReaper.watch}), so
   * the first job's listing is as quick as the others'. Idempotent.
   *
   * @throws {Error} If the reaper is closed, or its process could not be started.
   */
  start(): void {
    if (this.#closing) throw new Error("Cannot start the reaper: it is closed");
    this.#start();
  }

  /**
   * Lists a process group: it gets SIGKILL if this process dies (or closes the reaper) before
   * {@linkcode GroupReaper.unwatch}.
   *
   * @param pgid The group's id (its leader's pid).
   * @throws {RangeError} If `pgid` is not an integer > 1.
   * @throws {Error} If the reaper is closed, or its process could not be started.
   */
  watch(pgid: number): void {
    if (!Number.isSafeInteger(pgid) || pgid <= 1) {
      throw new RangeError(
        `Cannot watch process group: 'pgid' must be an integer > 1, got ${pgid}`,
      );
    }
    if (this.#closing) throw new Error("Cannot watch process group: the reaper is closed");
    this.#start();
    this.#watched.add(pgid);
    this.#write(`${this.#unwatched}+${pgid}\n`);
    this.#unwatched = "";
  }

  /**
   * Takes a process group off the list (its job ended and was cleaned up).
   *
   * @param pgid The group's id.
   */
  unwatch(pgid: number): void {
    if (!this.#watched.delete(pgid)) return;
    // Jobs that end together are unlisted in one write (a write wakes the reaper up): the lines
    // wait for the end of this synchronous run, at most (a listed group that is gone costs the
    // reaper a failed kill, nothing else).
    if (this.#unwatched === "") queueMicrotask(() => this.#flushUnwatched());
    this.#unwatched += `-${pgid}\n`;
  }

  /**
   * Closes the pipe: the reaper kills the groups still watched, then exits. Idempotent.
   *
   * @returns Resolves once the reaper process has exited.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** Same as {@linkcode GroupReaper.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #start(): void {
    if (this.#child) return;
    const setsid = this.#setsid;
    const child = new Deno.Command(setsid ?? this.#shell, {
      args: setsid === undefined ? ["-c", SCRIPT] : [this.#shell, "-c", SCRIPT],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
      detached: setsid === undefined,
    }).spawn();
    child.unref(); // it never keeps this process alive
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    try {
      // The same pipe, opened again for synchronous writes (Linux): a group is listed before
      // `watch` returns, so a job cannot outrun its listing, whenever this process dies.
      this.#pipe = Deno.openSync(`/proc/${child.pid}/fd/0`, { write: true });
      this.#writer.close().catch(() => {}); // the pipe stays open through #pipe
      this.#writer = undefined;
    } catch {
      // no /proc, or no permission to open it: asynchronous writes on the child's stdin; the
      // first one is slow (≈ 1 ms), so it is made now, not with the first job's listing
      this.#write("#\n");
    }
  }

  #flushUnwatched(): void {
    if (this.#unwatched === "") return;
    this.#write(this.#unwatched);
    this.#unwatched = "";
  }

  #write(line: string): void {
    const bytes = this.#encoder.encode(line);
    if (this.#pipe) {
      try {
        this.#pipe.writeSync(bytes); // a blocking pipe: written whole (the only writer)
      } catch {
        // the reaper is gone (killed by hand): nothing left to tell
      }
      return;
    }
    this.#writer?.write(bytes).catch(() => {
      // the reaper is gone (killed by hand): nothing left to tell
    });
  }

  async #shutdown(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    child.ref();
    this.#flushUnwatched(); // then the reaper kills only what is still running
    this.#pipe?.close();
    await this.#writer?.close().catch(() => {});
    this.#watched.clear();
    await child.status;
  }
}
