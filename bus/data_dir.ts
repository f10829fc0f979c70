/**
 * Opening the bus's data directory (`--data DIR`): the store in `DIR/bus.sqlite`, held by one
 * bus at a time (a lock that dies with its process; `DIR/bus.pid` names the holder).
 *
 * @module
 */

import { SqliteStore, type SqliteStoreOptions } from "./sqlite_store.ts";
import { DataDirError, DataDirInUseError, StoreError } from "./store_errors.ts";

/** Options for {@linkcode openDataDir}: the store's, but for its path and lock. */
export type DataDirOptions = Omit<SqliteStoreOptions, "path" | "exclusive">;

/** The database file's name in a data directory. */
export const DATA_FILE = "bus.sqlite";
/** The file naming the bus that holds a data directory. */
export const PID_FILE = "bus.pid";

const SQLITE_HEADER = "SQLite format 3\0";

/**
 * Opens the store of a data directory, creating the directory if missing, and holds it for this
 * process: a second bus on it is refused while this one runs.
 *
 * @example
 * ```ts
 * import { openDataDir } from "./data_dir.ts";
 * const dir = Deno.makeTempDirSync();
 * const store = openDataDir(`${dir}/sched-data`);
 * console.log(store.stats().kind); // sqlite
 * store.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 *
 * @param dir The directory.
 * @param options The store's options (see {@linkcode SqliteStoreOptions}).
 * @returns The open store.
 * @throws {DataDirInUseError} If another running bus holds the directory.
 * @throws {DataDirError} If the directory cannot be created or read, or its database file is
 * not a SQLite database (nothing is changed then).
 * @throws {StoreError} If the database's schema is newer than this code knows.
 */
export function openDataDir(dir: string, options: DataDirOptions = {}): SqliteStore {
  ensureDir(dir);
  const path = `${dir}/${DATA_FILE}`;
  checkHeader(path);
  let store: SqliteStore;
  try {
    store = new SqliteStore({ ...options, path, exclusive: true });
  } catch (error) {
    if (error instanceof StoreError || error instanceof RangeError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    if (/database is locked|database is busy/.test(message)) {
      throw new DataDirInUseError(dir, readPid(dir), { cause: error });
    }
    if (/not a database/.test(message)) throw notADatabase(path, error);
    throw new DataDirError(`cannot open ${path}: ${message}`, { cause: error });
  }
  try {
    Deno.writeTextFileSync(`${dir}/${PID_FILE}`, `${Deno.pid}\n`);
  } catch (error) {
    store.close();
    throw new DataDirError(`cannot write ${dir}/${PID_FILE}: ${describe(error)}`, {
      cause: error,
    });
  }
  return store;
}

function ensureDir(dir: string): void {
  let info: Deno.FileInfo | undefined;
  try {
    info = Deno.statSync(dir);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new DataDirError(`cannot read data directory ${dir}: ${describe(error)}`, {
        cause: error,
      });
    }
  }
  if (info !== undefined) {
    if (!info.isDirectory) throw new DataDirError(`data directory ${dir} is not a directory`);
    return;
  }
  try {
    Deno.mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new DataDirError(`cannot create data directory ${dir}: ${describe(error)}`, {
      cause: error,
    });
  }
}

/** Refuses a file that is there and does not start with SQLite's header; reads only. */
function checkHeader(path: string): void {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw new DataDirError(`cannot read ${path}: ${describe(error)}`, { cause: error });
  }
  try {
    if (!file.statSync().isFile) throw new DataDirError(`${path} is not a regular file`);
    const head = new Uint8Array(SQLITE_HEADER.length);
    let read = 0;
    while (read < head.length) {
      const n = file.readSync(head.subarray(read));
      if (n === null || n === 0) break;
      read += n;
    }
    if (read === 0) return; // empty: SQLite makes it a new database
    if (new TextDecoder().decode(head.subarray(0, read)) !== SQLITE_HEADER) {
      throw notADatabase(path, undefined);
    }
  } catch (error) {
    if (error instanceof DataDirError) throw error;
    throw new DataDirError(`cannot read ${path}: ${describe(error)}`, { cause: error });
  } finally {
    file.close();
  }
}

function notADatabase(path: string, cause: unknown): DataDirError {
  return new DataDirError(
    `${path} is not a SQLite database (corrupt?): nothing was changed`,
    cause === undefined ? undefined : { cause },
  );
}

function readPid(dir: string): number | undefined {
  try {
    const pid = Number.parseInt(Deno.readTextFileSync(`${dir}/${PID_FILE}`), 10);
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
