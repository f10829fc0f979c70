/**
 * Who may send what: each command a registered client may send, by role and protocol (and what
 * an admin token adds), and the refusal's words for any other.
 *
 * @module
 */

import type { ClientCommand, Role } from "./protocol.ts";

/** One command's rule in {@linkcode ALLOWED}. */
export interface RoleRule {
  /** The registered role(s) that may send it. */
  role: Role | readonly Role[];
  /** The protocol it needs, when it matters. */
  protocol?: 2;
  /**
   * An admin token's connection (`--auth`) may send it whatever it registered as (with the
   * protocol above): on any owner's job, or (`drain`) naming a scheduler.
   */
  admin?: true;
}

/**
 * Who may send each command once registered: the role, and the protocol when it matters
 * (`register` itself is allowed only before).
 */
export const ALLOWED: { readonly [C in Exclude<ClientCommand, "register">]: RoleRule } = {
  job_request: { role: "producer" },
  cancel: { role: "producer", protocol: 2, admin: true },
  set_priority: { role: "producer", protocol: 2, admin: true },
  event: { role: "scheduler", protocol: 2 },
  drain: { role: "scheduler", protocol: 2, admin: true },
  output: { role: "scheduler", protocol: 2 },
  list: { role: ["producer", "monitor"], protocol: 2, admin: true },
  show: { role: ["producer", "monitor"], protocol: 2, admin: true },
};

/** A connection's rights with `--auth`: its token's role. */
export interface TokenRights {
  /** The token's role (`"admin"` may send every command marked `admin`). */
  tokenRole: string;
}

/**
 * Why a registered connection may not send a command, or `undefined` when it may.
 *
 * @param op The command (not `register`).
 * @param role The connection's role (`undefined` before it registered).
 * @param protocol The connection's protocol.
 * @param token With `--auth`, the connection's token role (none: a seed client, or no `--auth`).
 * @returns `"cancel needs a connection registered as protocol 2 producer"` (with a token:
 * `"… (or an admin token): not allowed for role monitor"`), or `undefined`.
 * @example
 * ```ts
 * import { roleRefusal } from "./role_table.ts";
 * console.log(roleRefusal("list", "monitor", 2)); // undefined
 * console.log(roleRefusal("event", "producer", 2));
 * // event needs a connection registered as protocol 2 scheduler
 * console.log(roleRefusal("cancel", "monitor", 2, { tokenRole: "admin" })); // undefined
 * ```
 */
export function roleRefusal(
  op: Exclude<ClientCommand, "register">,
  role: Role | undefined,
  protocol: 1 | 2,
  token?: TokenRights,
): string | undefined {
  const allowed: RoleRule = ALLOWED[op];
  const roles = allowed.role;
  const protocolOk = allowed.protocol === undefined || protocol === allowed.protocol;
  const admin = allowed.admin === true && token?.tokenRole === "admin";
  if (
    role !== undefined && protocolOk &&
    (admin || (typeof roles === "string" ? role === roles : roles.includes(role)))
  ) return undefined;
  const named = typeof roles === "string" ? roles : roles.join(" or ");
  const who = allowed.protocol ? `protocol ${allowed.protocol} ${named}` : named;
  const base = `${op} needs a connection registered as ${who}`;
  if (token === undefined) return base;
  return `${base}${
    allowed.admin ? " (or an admin token)" : ""
  }: not allowed for role ${token.tokenRole}`;
}
