/**
 * A scheduler's state directory (`--state-dir`): the final reports it has not seen stored by the
 * bus yet, kept on disk so that a restarted scheduler reports them instead of the bus running
 * those jobs again.
 *
 * Files in the directory:
 * - `outcomes.jsonl`: one JSON line per final report (`{"final":{...event message}}`), appended
 *   before the report is sent, and one per acknowledgement (`{"ack":"<id>"}`) when the bus says
 *   `reported`. Rewritten with only the unacknowledged reports on open and when acknowledged lines
 *   pile up. Lines are written, not fsynced: they survive the scheduler's crash (SIGKILL), not a
 *   power loss of its machine.
 * - `scheduler.json`: `{"name": ...}`, the scheduler that owns the directory.
 * - `scheduler.lock`: locked (flock, exclusive) by the scheduler using the directory; the kernel
 *   releases it when that process dies, even by SIGKILL. A directory shared between machines
 *   (a network filesystem without flock) is not detected.
 * - `scheduler.pid`: the pid of the scheduler using it, removed on close, for the messages. Where
 *   `/proc` can be read (`--allow-all`), a pid file naming another live process also refuses the
 *   directory (a thread's id or a process started after the file was written does not count).
 *
 * @module
 */

import type { SchedulerEventMessage } from "./protocol.ts";

/** The journal's file name in the state directory. */
const OUTCOMES = "outcomes.jsonl";
/** The owner's name file. */
const OWNER = "scheduler.json";
/** The pid file. */
const PID = "scheduler.pid";
/** The lock file: held (flock) by the scheduler using the directory. */
const LOCK = "scheduler.lock";
/** Acknowledged lines before a rewrite is considered. */
const COMPACT_AFTER = 1000;

/** State directories opened by this process (a second open in it is refused too). */
const OPEN_HERE = new Set<string>();

/**
 * A state directory cannot be used: another scheduler's, in use, unreadable or corrupt.
 *
 * @example
 * ```ts
 * import { OutcomeJournalError } from "./outcome_journal.ts";
 * const error = new OutcomeJournalError("state dir /x belongs to scheduler a, not b");
 * console.log(error.name); // OutcomeJournalError
 * ```
 */
export class OutcomeJournalError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong with the directory.
   * @param options `cause`, when another error is behind it.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "OutcomeJournalError";
  }
}

/** Options for {@linkcode OutcomeJournal.open}. */
export interface OutcomeJournalOptions {
  /** The scheduler's name: a directory written under another name is refused. */
  name: string;
  /**
   * Receives what opening noticed (a torn last line ignored).
   * @default {() => {}}
   */
  onNotice?: (message: string) => void;
}

/**
 * The unacknowledged final reports of one scheduler, on disk.
 *
 * @example
 * ```ts
 * import { OutcomeJournal } from "./outcome_journal.ts";
 * const dir = Deno.makeTempDirSync();
 * const journal = OutcomeJournal.open(dir, { name: "node-a" });
 * journal.append({ cmd: "event", id: "j1", state: "succeeded", at: 1 });
 * journal.close();
 * const again = OutcomeJournal.open(dir, { name: "node-a" });
 * console.log(again.pending.map((m) => m.id)); // ["j1"]
 * again.ack("j1");
 * again.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class OutcomeJournal {
  #dir: string;
  #file: Deno.FsFile;
  #pending = new Map<string, SchedulerEventMessage>();
  #acked = 0;
  #closed = false;
  #encoder = new TextEncoder();

  private constructor(dir: string, pending: Map<string, SchedulerEventMessage>) {
    this.#dir = dir;
    this.#pending = pending;
    this.#file = this.#rewrite();
  }

  /**
   * Opens (creating if needed) a state directory for the scheduler `name`: checks the owner and
   * the pid file, loads the unacknowledged reports and rewrites the journal with only them.
   *
   * @param dir The state directory.
   * @param options See {@linkcode OutcomeJournalOptions}.
   * @returns The journal, holding the directory until {@linkcode OutcomeJournal.close}.
   * @throws {OutcomeJournalError} If the directory is another scheduler's, in use, unreadable,
   * or its journal has a corrupt line before the last.
   */
  static open(dir: string, options: OutcomeJournalOptions): OutcomeJournal {
    const where = `state dir ${dir}`;
    const io = <T>(what: string, fn: () => T): T => {
      try {
        return fn();
      } catch (error) {
        if (error instanceof OutcomeJournalError) throw error;
        const why = error instanceof Error ? error.message : String(error);
        throw new OutcomeJournalError(`${where}: cannot ${what}: ${why}`, { cause: error });
      }
    };
    io("create it", () => Deno.mkdirSync(dir, { recursive: true }));
    const key = io("resolve it", () => Deno.realPathSync(dir));
    io("check its owner", () => checkOwner(dir, options.name));
    if (OPEN_HERE.has(key)) {
      throw new OutcomeJournalError(`${where} is in use by a scheduler in this process`);
    }
    io("lock it", () => lock(dir));
    OPEN_HERE.add(key);
    try {
      const text = io("read its journal", () => readOptional(`${dir}/${OUTCOMES}`));
      const pending = parseJournal(text, `${where}/${OUTCOMES}`, options.onNotice);
      const journal = io("rewrite its journal", () => new OutcomeJournal(dir, pending));
      return journal;
    } catch (error) {
      OPEN_HERE.delete(key);
      unlock(dir);
      throw error;
    }
  }

  /** The unacknowledged final reports, oldest first. */
  get pending(): SchedulerEventMessage[] {
    return [...this.#pending.values()];
  }

  /** How many final reports are unacknowledged. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Records a final report (before it is sent); a later one for the same job replaces it.
   *
   * @param message The job's final event message.
   */
  append(message: SchedulerEventMessage): void {
    if (this.#closed) return;
    this.#pending.delete(message.id);
    this.#pending.set(message.id, message);
    this.#write({ final: message });
  }

  /**
   * Records that the bus stored a job's final report (or that it is given up): it is forgotten.
   * Unknown ids are ignored.
   *
   * @param id The job.
   */
  ack(id: string): void {
    if (this.#closed || !this.#pending.delete(id)) return;
    this.#write({ ack: id });
    this.#acked++;
    if (this.#acked >= COMPACT_AFTER && this.#acked > this.#pending.size) {
      this.#file.close();
      this.#file = this.#rewrite();
    }
  }

  /** Closes the journal and releases the directory (the reports stay on disk). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
    unlock(this.#dir);
    try {
      OPEN_HERE.delete(Deno.realPathSync(this.#dir));
    } catch {
      // the directory is gone: nothing to release
    }
  }

  #write(line: object): void {
    const bytes = this.#encoder.encode(JSON.stringify(line) + "\n");
    let at = 0;
    while (at < bytes.length) at += this.#file.writeSync(bytes.subarray(at));
  }

  /** Writes the pending reports to a new journal, renamed over the old; opened for appends. */
  #rewrite(): Deno.FsFile {
    const path = `${this.#dir}/${OUTCOMES}`;
    const lines = [...this.#pending.values()].map((final) => JSON.stringify({ final }) + "\n");
    Deno.writeTextFileSync(`${path}.tmp`, lines.join(""));
    Deno.renameSync(`${path}.tmp`, path);
    this.#acked = 0;
    return Deno.openSync(path, { append: true });
  }
}

/** A file's text, or "" when it does not exist. */
function readOptional(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
}

/** Records `name` as the directory's owner, or refuses another's directory. */
function checkOwner(dir: string, name: string): void {
  const text = readOptional(`${dir}/${OWNER}`);
  if (text === "") {
    Deno.writeTextFileSync(`${dir}/${OWNER}`, JSON.stringify({ name }) + "\n");
    return;
  }
  let owner: unknown;
  try {
    owner = (JSON.parse(text) as { name?: unknown }).name;
  } catch {
    throw new OutcomeJournalError(`state dir ${dir}: ${OWNER} is not JSON`);
  }
  if (owner !== name) {
    throw new OutcomeJournalError(
      `state dir ${dir} belongs to scheduler ${JSON.stringify(owner)}, not ${
        JSON.stringify(name)
      }: give each scheduler its own state dir`,
    );
  }
}

/** The lock files held by this process's open journals, by directory. */
const LOCKS = new Map<string, Deno.FsFile>();

/**
 * Locks the directory (an exclusive lock on `scheduler.lock`, released by the kernel when this
 * process dies, even by SIGKILL) and writes our pid file; refuses if another process holds the
 * lock, or if the pid file names a live process other than this one (when `/proc` can tell:
 * Deno lets only `--allow-all` read it, so the lock is what a CLI run relies on).
 */
function lock(dir: string): void {
  const path = `${dir}/${PID}`;
  const held = Number(readOptional(path).trim());
  const file = Deno.openSync(`${dir}/${LOCK}`, { write: true, create: true });
  let mine = false;
  try {
    mine = file.tryLockSync(true);
  } finally {
    if (!mine) file.close();
  }
  const other = Number.isSafeInteger(held) && held > 0 && held !== Deno.pid;
  if (!mine || (other && isAlive(held) && !startedAfter(held, path))) {
    if (mine) file.close();
    throw new OutcomeJournalError(
      `state dir ${dir} is in use by a running scheduler (pid ${held}); if it is not, remove ${path}`,
    );
  }
  LOCKS.set(dir, file);
  Deno.writeTextFileSync(path, `${Deno.pid}\n`);
}

/**
 * Whether the process now under `pid` started clearly after `path` was written, so it got the
 * pid later (pids are reused): Linux's `/proc/PID/stat` start time (clock ticks of 1/100 s
 * since `/proc/stat`'s `btime`, whole seconds) against the file's mtime, with 2 s of margin.
 * False when unknown.
 */
function startedAfter(pid: number, path: string): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    const boot = Number(Deno.readTextFileSync("/proc/stat").match(/^btime (\d+)$/m)?.[1]);
    const written = Deno.statSync(path).mtime?.getTime();
    if (!Number.isFinite(ticks) || !Number.isFinite(boot) || written === undefined) return false;
    return boot * 1000 + ticks * 10 > written + 2000;
  } catch {
    return false;
  }
}

/** Removes our pid file (if it is still ours) and releases the lock. */
function unlock(dir: string): void {
  LOCKS.get(dir)?.close();
  LOCKS.delete(dir);
  try {
    if (Number(Deno.readTextFileSync(`${dir}/${PID}`).trim()) === Deno.pid) {
      Deno.removeSync(`${dir}/${PID}`);
    }
  } catch {
    // gone already
  }
}

/**
 * Whether a process runs under this pid, as far as `/proc` tells (Linux, `--allow-all`):
 * `/proc/<pid>` whose `Tgid` is that pid (a thread's id has a `/proc/<tid>` too). False when it
 * cannot tell: the directory's lock decides then.
 */
function isAlive(pid: number): boolean {
  let status: string;
  try {
    status = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return false; // gone, or not ours to read (Deno's NotCapable without --allow-all)
  }
  const tgid = status.match(/^Tgid:\s*(\d+)$/m)?.[1];
  return tgid === undefined || Number(tgid) === pid;
}

/**
 * The unacknowledged reports of a journal's text: a torn last line (a crash mid-write) is
 * ignored with a notice; a bad line before it is an error.
 */
function parseJournal(
  text: string,
  where: string,
  onNotice: ((message: string) => void) | undefined,
): Map<string, SchedulerEventMessage> {
  const pending = new Map<string, SchedulerEventMessage>();
  const lines = text.split("\n");
  const last = lines.length - 1; // "" after a final newline
  lines.forEach((line, index) => {
    if (line === "") return;
    const entry = parseLine(line);
    if (entry === undefined) {
      if (index === last) {
        onNotice?.(`${where}: ignored a torn last line (${line.length} bytes)`);
        return;
      }
      throw new OutcomeJournalError(`${where}: line ${index + 1} is corrupt: ${line.slice(0, 80)}`);
    }
    if (typeof entry === "string") pending.delete(entry);
    else {
      pending.delete(entry.id);
      pending.set(entry.id, entry);
    }
  });
  return pending;
}

/** One journal line: a final report, an acked id, or undefined when it is not one. */
function parseLine(line: string): SchedulerEventMessage | string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { final, ack } = value as { final?: unknown; ack?: unknown };
  if (typeof ack === "string") return ack;
  if (
    typeof final === "object" && final !== null &&
    (final as { cmd?: unknown }).cmd === "event" &&
    typeof (final as { id?: unknown }).id === "string"
  ) {
    return final as SchedulerEventMessage;
  }
  return undefined;
}
