/**
 * The bus's tokens: a JSON file of names, roles and SHA-256 hashes of secrets (`--auth FILE`),
 * read, verified in constant time, reloaded when it changes, and edited by `token add|revoke`.
 *
 * @module
 */

import { type Clock, systemClock } from "../core/clock.ts";

/** What a token lets its holder be: see `docs/protocol.md`, "Authentication". */
export type TokenRole = "producer" | "scheduler" | "monitor" | "admin" | "metrics";

/** Every {@linkcode TokenRole}, in the order the docs give them. */
export const TOKEN_ROLES: readonly TokenRole[] = [
  "producer",
  "scheduler",
  "monitor",
  "admin",
  "metrics",
];

/** Who holds a verified token: its name and role, and which stored hash it matched. */
export interface TokenIdentity {
  /** The token's name: the owner of a producer's jobs, a scheduler's name. */
  name: string;
  /** The token's role. */
  role: TokenRole;
  /** The stored hash it matched (`sha256:<hex>`), so a revoked and re-added name is told apart. */
  hash: string;
}

/** One token as `list()` shows it (never the secret, which is not stored). */
export interface TokenInfo {
  /** `^[A-Za-z0-9_.-]{1,64}$`, unique in the file. */
  name: string;
  /** Its role. */
  role: TokenRole;
  /** When it was added (ISO 8601). */
  createdAt: string;
}

/** Options for {@linkcode TokenStore.load}. */
export interface TokenStoreOptions {
  /**
   * A missing file is an empty store (the file is made by the first `add`) instead of an error.
   * @default {false}
   */
  missingOk?: boolean;
  /**
   * Where time comes from: `createdAt`, and how often the file is looked at again (at most once
   * a second).
   * @default {systemClock}
   */
  clock?: Clock;
}

/**
 * The token file cannot be read, is not a token file, or cannot be written.
 *
 * @example
 * ```ts
 * import { TokenFileError } from "./token_store.ts";
 * console.log(new TokenFileError("Cannot load tokens from x.json: not found").name);
 * // TokenFileError
 * ```
 */
export class TokenFileError extends Error {
  /**
   * Creates the error.
   *
   * @param message What went wrong with which file.
   * @param options `cause`, the error behind it.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TokenFileError";
  }
}

interface Entry extends TokenInfo {
  hash: string;
  bytes: Uint8Array; // the hash's 32 bytes
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const HASH = /^sha256:([0-9a-f]{64})$/;
const RECHECK_MS = 1000;

/**
 * The tokens of one `--auth` file. Only SHA-256 hashes of the secrets are stored; a presented
 * secret is hashed and compared with every stored hash in constant time. The bus calls
 * {@linkcode TokenStore.refresh} (at most once a second it looks at the file's mtime) so that a
 * `token revoke` on the command line takes effect on a running bus.
 *
 * @example
 * ```ts
 * import { TokenStore } from "./token_store.ts";
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * await Deno.remove(path);
 * const store = await TokenStore.load(path, { missingOk: true });
 * const secret = await store.add("alice", "producer");
 * console.log((await store.verify(secret))?.name); // alice
 * console.log(await store.verify("sched_wrong")); // undefined
 * await Deno.remove(path);
 * ```
 */
export class TokenStore {
  #path: string;
  #clock: Clock;
  #entries: Entry[] = [];
  #stamp = ""; // mtime, size and inode of the file as last read
  #checkedAt = -Infinity;

  private constructor(path: string, clock: Clock) {
    this.#path = path;
    this.#clock = clock;
  }

  /**
   * Reads a token file.
   *
   * @param path The file (`--auth FILE`).
   * @param options See {@linkcode TokenStoreOptions}.
   * @returns The store.
   * @throws {TokenFileError} If the file is missing (unless `missingOk`), unreadable or not a
   *   token file, with the file's name and what is wrong.
   * @example
   * ```ts
   * import { TokenStore } from "./token_store.ts";
   * const store = await TokenStore.load("no-such-file.json", { missingOk: true });
   * console.log(store.list().length); // 0
   * ```
   */
  static async load(path: string, options: TokenStoreOptions = {}): Promise<TokenStore> {
    const store = new TokenStore(path, options.clock ?? systemClock);
    const stamp = await store.#statStamp();
    if (stamp === undefined && !options.missingOk) {
      throw new TokenFileError(
        `Cannot load tokens from ${path}: no such file (make one with: deno task bus -- token add ` +
          `NAME --role ROLE --auth ${path})`,
      );
    }
    if (stamp !== undefined) await store.#read(stamp);
    store.#checkedAt = store.#clock.now();
    return store;
  }

  /** The file's path. */
  get path(): string {
    return this.#path;
  }

  /**
   * The tokens, in the file's order.
   *
   * @returns Name, role and creation time of each (no secrets, no hashes).
   * @example
   * ```ts
   * import { TokenStore } from "./token_store.ts";
   * const store = await TokenStore.load("no-such-file.json", { missingOk: true });
   * console.log(store.list()); // []
   * ```
   */
  list(): TokenInfo[] {
    return this.#entries.map(({ name, role, createdAt }) => ({ name, role, createdAt }));
  }

  /**
   * Adds a token with a new random secret and writes the file (mode 0600).
   *
   * @param name `^[A-Za-z0-9_.-]{1,64}$`, not in the file yet.
   * @param role Its role.
   * @returns The secret (`sched_` + base64url of 32 random bytes): shown once, never stored.
   * @throws {RangeError} For a bad or taken name, or an unknown role.
   * @throws {TokenFileError} If the file cannot be written.
   * @example
   * ```ts
   * import { TokenStore } from "./token_store.ts";
   * const path = await Deno.makeTempDir();
   * const store = await TokenStore.load(`${path}/auth.json`, { missingOk: true });
   * console.log((await store.add("node-a", "scheduler")).startsWith("sched_")); // true
   * await Deno.remove(path, { recursive: true });
   * ```
   */
  async add(name: string, role: TokenRole): Promise<string> {
    if (!NAME.test(name)) {
      throw new RangeError(
        `Cannot add token: name must be 1..64 letters, digits, '_', '.' or '-', got ${
          JSON.stringify(name)
        }`,
      );
    }
    if (!TOKEN_ROLES.includes(role)) {
      throw new RangeError(
        `Cannot add token: role must be one of ${TOKEN_ROLES.join(", ")}, got ${
          JSON.stringify(role)
        }`,
      );
    }
    if (this.#entries.some((entry) => entry.name === name)) {
      throw new RangeError(`Cannot add token: a token named "${name}" exists (revoke it first)`);
    }
    const secret = `sched_${base64url(crypto.getRandomValues(new Uint8Array(32)))}`;
    const bytes = await sha256(secret);
    const createdAt = new Date(this.#clock.now()).toISOString();
    this.#entries.push({ name, role, createdAt, hash: `sha256:${hex(bytes)}`, bytes });
    await this.#write();
    return secret;
  }

  /**
   * Removes a token and writes the file: its secret is refused from then on (a running bus
   * sees it within a second or two and closes its connections with 1008).
   *
   * @param name The token's name.
   * @returns Whether there was such a token.
   * @throws {TokenFileError} If the file cannot be written.
   * @example
   * ```ts
   * import { TokenStore } from "./token_store.ts";
   * const store = await TokenStore.load("no-such-file.json", { missingOk: true });
   * console.log(await store.revoke("nobody")); // false
   * ```
   */
  async revoke(name: string): Promise<boolean> {
    const before = this.#entries.length;
    this.#entries = this.#entries.filter((entry) => entry.name !== name);
    if (this.#entries.length === before) return false;
    await this.#write();
    return true;
  }

  /**
   * Who holds a secret: hashes it and compares the hash with every stored one in constant time
   * (no early exit), after {@linkcode TokenStore.refresh}.
   *
   * @param secret The presented secret.
   * @returns The token's name, role and hash, or `undefined` for an unknown or revoked secret.
   * @example
   * ```ts
   * import { TokenStore } from "./token_store.ts";
   * const store = await TokenStore.load("no-such-file.json", { missingOk: true });
   * console.log(await store.verify("sched_x")); // undefined
   * ```
   */
  async verify(secret: string): Promise<TokenIdentity | undefined> {
    await this.refresh();
    const presented = await sha256(secret);
    let found: Entry | undefined;
    for (const entry of this.#entries) {
      let diff = 0;
      for (let i = 0; i < 32; i++) diff |= presented[i]! ^ entry.bytes[i]!; // both 32 bytes
      if (diff === 0) found = entry;
    }
    return found && { name: found.name, role: found.role, hash: found.hash };
  }

  /**
   * Whether a verified identity still holds: its token is in the file with the same hash.
   *
   * @param identity What {@linkcode TokenStore.verify} returned.
   * @returns False once the token was revoked (or revoked and added again with a new secret).
   * @example
   * ```ts
   * import { TokenStore } from "./token_store.ts";
   * const store = await TokenStore.load("no-such-file.json", { missingOk: true });
   * console.log(store.holds({ name: "a", role: "admin", hash: "sha256:00" })); // false
   * ```
   */
  holds(identity: TokenIdentity): boolean {
    return this.#entries.some((entry) =>
      entry.name === identity.name && entry.hash === identity.hash
    );
  }

  /**
   * Reads the file again if its mtime, size or inode changed, looking at most once a second.
   * A file that became unreadable or corrupt keeps the tokens last read (and throws).
   *
   * @returns Whether the tokens were read again.
   * @throws {TokenFileError} If the changed file cannot be read or is not a token file.
   * @example
   * ```ts
   * import { TokenStore } from "./token_store.ts";
   * const store = await TokenStore.load("no-such-file.json", { missingOk: true });
   * console.log(await store.refresh()); // false: looked less than a second ago
   * ```
   */
  async refresh(): Promise<boolean> {
    const now = this.#clock.now();
    if (now - this.#checkedAt < RECHECK_MS) return false;
    this.#checkedAt = now;
    const stamp = await this.#statStamp();
    if (stamp === this.#stamp) return false;
    if (stamp === undefined) {
      this.#entries = [];
      this.#stamp = "";
      return true;
    }
    await this.#read(stamp);
    return true;
  }

  async #statStamp(): Promise<string | undefined> {
    try {
      const info = await Deno.stat(this.#path);
      return `${info.mtime?.getTime()}:${info.size}:${info.ino}`;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw new TokenFileError(`Cannot load tokens from ${this.#path}: ${message(error)}`, {
        cause: error,
      });
    }
  }

  async #read(stamp: string): Promise<void> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.#path);
    } catch (error) {
      throw new TokenFileError(`Cannot load tokens from ${this.#path}: ${message(error)}`, {
        cause: error,
      });
    }
    this.#entries = parseTokenFile(text, this.#path);
    this.#stamp = stamp;
  }

  async #write(): Promise<void> {
    const tokens = this.#entries.map(({ name, role, hash, createdAt }) => ({
      name,
      role,
      hash,
      createdAt,
    }));
    const text = `${JSON.stringify({ version: 1, tokens }, null, 2)}\n`;
    const temp = `${this.#path}.${crypto.randomUUID()}.tmp`;
    try {
      await Deno.writeTextFile(temp, text, { mode: 0o600 });
      await Deno.chmod(temp, 0o600); // whatever the umask
      await Deno.rename(temp, this.#path); // readers see the old file or the new one
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      throw new TokenFileError(`Cannot write tokens to ${this.#path}: ${message(error)}`, {
        cause: error,
      });
    }
    this.#stamp = (await this.#statStamp()) ?? "";
  }
}

/** Parses and checks a token file's text; throws a TokenFileError naming what is wrong. */
function parseTokenFile(text: string, path: string): Entry[] {
  const bad = (what: string): TokenFileError =>
    new TokenFileError(`Cannot load tokens from ${path}: ${what}`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw bad(`not JSON (${message(error)})`);
  }
  if (!isObject(data) || data.version !== 1 || !Array.isArray(data.tokens)) {
    throw bad('not a token file: expected {"version":1,"tokens":[...]}');
  }
  const names = new Set<string>();
  return data.tokens.map((token: unknown, i: number): Entry => {
    const where = `tokens[${i}]`;
    if (!isObject(token)) throw bad(`${where} must be an object`);
    const { name, role, hash, createdAt } = token;
    if (typeof name !== "string" || !NAME.test(name)) {
      throw bad(`${where}.name must be 1..64 letters, digits, '_', '.' or '-'`);
    }
    if (names.has(name)) throw bad(`${where}.name "${name}" is there twice`);
    names.add(name);
    if (typeof role !== "string" || !TOKEN_ROLES.includes(role as TokenRole)) {
      throw bad(`${where}.role must be one of ${TOKEN_ROLES.join(", ")}`);
    }
    const digest = typeof hash === "string" ? HASH.exec(hash)?.[1] : undefined;
    if (digest === undefined) throw bad(`${where}.hash must be "sha256:" and 64 hex digits`);
    if (typeof createdAt !== "string") throw bad(`${where}.createdAt must be a string`);
    return { name, role: role as TokenRole, hash: hash as string, createdAt, bytes: unhex(digest) };
  });
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function unhex(text: string): Uint8Array {
  return Uint8Array.from(
    { length: text.length / 2 },
    (_, i) => parseInt(text.slice(2 * i, 2 * i + 2), 16),
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function message(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  return error instanceof Error ? error.message : String(error);
}
