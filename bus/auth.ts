/**
 * Authentication at the bus's door (`--auth`): the token a request presents (an `Authorization:
 * Bearer` header, or for browsers `Sec-WebSocket-Protocol: sched.v2, bearer.<base64url>`), the
 * HTTP answers to a missing or unknown one (401) and to an address that failed too often (429),
 * and what a token's role lets a connection register as.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../core/clock.ts";
import type { Role } from "./protocol.ts";
import type { TokenIdentity, TokenRole, TokenStore } from "./token_store.ts";

/** The subprotocol a browser offers beside its `bearer.<base64url>`; the bus answers with it. */
export const SUBPROTOCOL = "sched.v2";

/** Options for {@linkcode BusAuth}. */
export interface BusAuthOptions {
  /**
   * Whether a WebSocket upgrade without any token is let in, as a seed (protocol 1) client.
   * @default {false}
   */
  allowSeedClients?: boolean;
  /**
   * Failed attempts from one address within `failureWindowMs` after which it gets 429 for the
   * rest of that window.
   * @default {10}
   */
  maxFailures?: number;
  /**
   * The window of `maxFailures`, from an address's first failure in it.
   * @default {60_000}
   */
  failureWindowMs?: number;
  /**
   * Gets a line for the log: a failure (once per address per window), a file that cannot be
   * read again.
   * @default {() => {}}
   */
  onWarning?: (line: string) => void;
  /**
   * Where time comes from (the failure windows, the once-a-second look at the token file).
   * @default {systemClock}
   */
  clock?: Clock;
}

/** What {@linkcode BusAuth.authenticate} decided. */
export type AuthResult =
  | {
    ok: true;
    /** The token's holder; `undefined` for a seed client let in without a token. */
    identity: TokenIdentity | undefined;
    /** The subprotocol to answer with (`sched.v2` when the client offered it). */
    protocol: string | undefined;
  }
  | { ok: false; response: Response };

/** What a request asks for, for {@linkcode BusAuth.authenticate}. */
export interface AuthNeed {
  /** A WebSocket upgrade (seed clients may come without a token) rather than a read endpoint. */
  upgrade: boolean;
  /**
   * The roles that may have it (`/status`: monitor or admin).
   * @default {undefined} any role
   */
  roles?: readonly TokenRole[];
}

interface Failures {
  since: number;
  count: number;
}

/**
 * The bus's door when `--auth` is on: checks the token a request presents against a
 * {@linkcode TokenStore}, limits failed attempts per remote address, and watches the token file
 * so that connections of a revoked token can be closed.
 *
 * @example
 * ```ts
 * import { BusAuth } from "./auth.ts";
 * import { TokenStore } from "./token_store.ts";
 * const dir = await Deno.makeTempDir();
 * const store = await TokenStore.load(`${dir}/auth.json`, { missingOk: true });
 * const secret = await store.add("alice", "producer");
 * const auth = new BusAuth(store);
 * const ok = await auth.authenticate(
 *   new Request("http://x/", { headers: { authorization: `Bearer ${secret}` } }),
 *   "127.0.0.1",
 *   { upgrade: true },
 * );
 * console.log(ok.ok && ok.identity?.name); // alice
 * const no = await auth.authenticate(new Request("http://x/"), "127.0.0.1", { upgrade: true });
 * console.log(no.ok || no.response.status); // 401
 * await auth.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class BusAuth {
  readonly #store: TokenStore;
  readonly #allowSeed: boolean;
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #warn: (line: string) => void;
  readonly #clock: Clock;
  #failures = new Map<string, Failures>();
  #timer: TimerId | undefined;
  #polling: Promise<void> | undefined;
  #closed = false;
  #lastError = "";

  /**
   * Creates the door.
   *
   * @param store The tokens.
   * @param options See {@linkcode BusAuthOptions}.
   * @throws {RangeError} If `maxFailures` or `failureWindowMs` is not a positive integer.
   */
  constructor(store: TokenStore, options: BusAuthOptions = {}) {
    this.#store = store;
    this.#allowSeed = options.allowSeedClients ?? false;
    this.#maxFailures = options.maxFailures ?? 10;
    this.#windowMs = options.failureWindowMs ?? 60_000;
    for (
      const [name, value] of [["maxFailures", this.#maxFailures], [
        "failureWindowMs",
        this.#windowMs,
      ]] as const
    ) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(
          `Cannot create BusAuth: '${name}' must be a positive integer, got ${value}`,
        );
      }
    }
    this.#warn = options.onWarning ?? (() => {});
    this.#clock = options.clock ?? systemClock;
  }

  /** The tokens. */
  get store(): TokenStore {
    return this.#store;
  }

  /** Whether seed clients may come without a token. */
  get allowSeedClients(): boolean {
    return this.#allowSeed;
  }

  /**
   * Checks the token of a request: 429 for an address over its failures, 401 for a missing or
   * unknown token (a failure) or a role that may not have what is asked (not a failure).
   *
   * @param request The HTTP request (an upgrade, or a read endpoint).
   * @param remote The remote address (host only: the limit is per address).
   * @param need What is asked: see {@linkcode AuthNeed}.
   * @returns The identity and the subprotocol to answer with, or the response to send.
   * @example
   * ```ts
   * import { BusAuth } from "./auth.ts";
   * import { TokenStore } from "./token_store.ts";
   * const store = await TokenStore.load("no-such-file.json", { missingOk: true });
   * const auth = new BusAuth(store, { allowSeedClients: true });
   * const seed = await auth.authenticate(new Request("http://x/"), "::1", { upgrade: true });
   * console.log(seed.ok && seed.identity); // undefined
   * ```
   */
  async authenticate(request: Request, remote: string, need: AuthNeed): Promise<AuthResult> {
    const now = this.#clock.now();
    const failures = this.#failures.get(remote);
    if (failures && now - failures.since >= this.#windowMs) this.#failures.delete(remote);
    else if (failures && failures.count >= this.#maxFailures) {
      const retryS = Math.ceil((failures.since + this.#windowMs - now) / 1000);
      return refuse(429, `too many failed attempts from ${remote}: try again in ${retryS} s`, {
        "retry-after": String(retryS),
      });
    }
    const presented = presentedToken(request.headers);
    const protocol = presented.protocol;
    if (presented.secret === undefined) {
      if (need.upgrade && need.roles === undefined && this.#allowSeed) {
        return { ok: true, identity: undefined, protocol };
      }
      return this.#fail(remote, "missing token");
    }
    const identity = await this.#verify(presented.secret);
    if (!identity) return this.#fail(remote, "unknown token");
    if (need.upgrade && identity.role === "metrics") {
      return refuse(401, `token ${identity.name} (metrics) may only read /metrics`);
    }
    if (need.roles && !need.roles.includes(identity.role)) {
      return refuse(401, `needs a ${need.roles.join(" or ")} token, got ${identity.role}`);
    }
    return { ok: true, identity, protocol };
  }

  /**
   * {@linkcode BusAuth.authenticate}, then the response `then` makes for the identity, or the
   * refusal.
   *
   * @param request The HTTP request.
   * @param remote The remote address (host only).
   * @param need What is asked: see {@linkcode AuthNeed}.
   * @param then Makes the response once the request is let in.
   * @returns The response to send.
   * @example
   * ```ts
   * import { BusAuth } from "./auth.ts";
   * import { TokenStore } from "./token_store.ts";
   * const auth = new BusAuth(await TokenStore.load("no-such-file.json", { missingOk: true }));
   * const response = await auth.admit(new Request("http://x/status"), "::1", {
   *   upgrade: false,
   *   roles: ["monitor", "admin"],
   * }, () => new Response("the status"));
   * console.log(response.status); // 401
   * await response.body?.cancel();
   * ```
   */
  async admit(
    request: Request,
    remote: string,
    need: AuthNeed,
    then: (identity: TokenIdentity | undefined, protocol: string | undefined) => Response,
  ): Promise<Response> {
    const result = await this.authenticate(request, remote, need);
    return result.ok ? then(result.identity, result.protocol) : result.response;
  }

  /**
   * Looks at the token file once a second from now on; `onChange` runs after it was read again
   * (then {@linkcode TokenStore.holds} tells which connections lost their token).
   *
   * @param onChange Called after each reload.
   * @example
   * ```ts
   * import { BusAuth } from "./auth.ts";
   * import { TokenStore } from "./token_store.ts";
   * const auth = new BusAuth(await TokenStore.load("no-such-file.json", { missingOk: true }));
   * auth.watch(() => {});
   * await auth.close();
   * ```
   */
  watch(onChange: () => void): void {
    if (this.#closed || this.#timer !== undefined) return;
    const poll = (): void => {
      this.#timer = undefined;
      this.#polling = this.#store.refresh().then(
        (changed) => {
          this.#lastError = "";
          if (changed && !this.#closed) onChange();
        },
        (error) => this.#warnError(error),
      ).finally(() => {
        this.#polling = undefined;
        if (!this.#closed) this.#timer = this.#clock.setTimeout(poll, 1000);
      });
    };
    this.#timer = this.#clock.setTimeout(poll, 1000);
  }

  /**
   * Stops watching the file. Idempotent.
   *
   * @returns Resolves once a look at the file in progress has ended.
   * @example
   * ```ts
   * import { BusAuth } from "./auth.ts";
   * import { TokenStore } from "./token_store.ts";
   * const auth = new BusAuth(await TokenStore.load("no-such-file.json", { missingOk: true }));
   * await auth.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#polling;
  }

  /** Same as {@linkcode BusAuth.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #verify(secret: string): Promise<TokenIdentity | undefined> {
    try {
      return await this.#store.verify(secret);
    } catch (error) { // the file changed into something unreadable: the tokens last read hold
      this.#warnError(error);
      return await this.#store.verify(secret); // looked just now: no second read
    }
  }

  #fail(remote: string, reason: string): AuthResult {
    const now = this.#clock.now();
    let failures = this.#failures.get(remote);
    if (!failures) {
      if (this.#failures.size >= 10_000) this.#prune(now);
      failures = { since: now, count: 0 };
      this.#failures.set(remote, failures);
      this.#warn(
        `auth: ${reason} from ${remote} (401; more failures from there within ` +
          `${this.#windowMs / 1000} s are not logged, after ${this.#maxFailures} they get 429)`,
      );
    }
    failures.count++;
    return refuse(401, reason, { "www-authenticate": 'Bearer realm="sched bus"' });
  }

  #prune(now: number): void {
    for (const [remote, failures] of this.#failures) {
      if (now - failures.since >= this.#windowMs) this.#failures.delete(remote);
    }
  }

  #warnError(error: unknown): void {
    const line = `auth: ${error instanceof Error ? error.message : String(error)} ` +
      "(the tokens last read still hold)";
    if (line !== this.#lastError) this.#warn(line);
    this.#lastError = line;
  }
}

/**
 * The secret a request presents and the subprotocol to answer with: `Authorization: Bearer S`
 * first, else a `bearer.<base64url(S)>` entry of `Sec-WebSocket-Protocol`.
 *
 * @param headers The request's headers.
 * @returns `secret` (undefined when none; "" when one is there but unreadable) and `protocol`
 *   (`sched.v2` when offered).
 * @example
 * ```ts
 * import { presentedToken } from "./auth.ts";
 * const headers = new Headers({ "sec-websocket-protocol": "sched.v2, bearer.c2NoZWRfeA" });
 * console.log(presentedToken(headers)); // { secret: "sched_x", protocol: "sched.v2" }
 * ```
 */
export function presentedToken(
  headers: Headers,
): { secret: string | undefined; protocol: string | undefined } {
  const offered = (headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
  const protocol = offered.includes(SUBPROTOCOL) ? SUBPROTOCOL : undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(headers.get("authorization") ?? "")?.[1];
  if (bearer !== undefined) return { secret: bearer, protocol };
  const entry = offered.find((p) => p.startsWith("bearer."));
  if (entry === undefined) return { secret: undefined, protocol };
  return { secret: fromBase64url(entry.slice("bearer.".length)), protocol };
}

/**
 * Why a connection may not register as it asks, with `--auth` on; `undefined` when it may. A
 * token's role must be the registered type (admin: any); a connection without a token (a seed
 * client, let in by `--allow-seed-clients`) may register only with protocol 1.
 *
 * @param identity The connection's token holder (`undefined`: none).
 * @param type The `register`'s type.
 * @param protocol The `register`'s protocol.
 * @returns The refusal's words, or `undefined`.
 * @example
 * ```ts
 * import { registerRefusal } from "./auth.ts";
 * const alice = { name: "alice", role: "producer", hash: "sha256:0" } as const;
 * console.log(registerRefusal(alice, "producer", 2)); // undefined
 * console.log(registerRefusal(alice, "scheduler", 2));
 * // token alice (producer) may not register as scheduler: not allowed for role producer
 * ```
 */
export function registerRefusal(
  identity: TokenIdentity | undefined,
  type: Role,
  protocol: 1 | 2,
): string | undefined {
  if (identity === undefined) {
    return protocol === 1
      ? undefined
      : "a connection without a token may register only with protocol 1 (a seed client)";
  }
  if (identity.role === "admin" || identity.role === type) return undefined;
  return `token ${identity.name} (${identity.role}) may not register as ${type}: ` +
    `not allowed for role ${identity.role}`;
}

function refuse(status: number, error: string, headers: Record<string, string> = {}): AuthResult {
  return { ok: false, response: Response.json({ error }, { status, headers }) };
}

/** base64url to text; "" (an unknown token, never valid) when it is not base64url of UTF-8. */
function fromBase64url(text: string): string {
  try {
    const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return "";
  }
}
