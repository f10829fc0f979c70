/**
 * Who may send what: each command a registered client may send, by role and protocol, and the
 * refusal's words for any other.
 *
 * @module
 */

import type { ClientCommand, Role } from "./protocol.ts";

/**
 * Who may send each command once registered: the role, and the protocol when it matters
 * (`register` itself is allowed only before).
 */
export const ALLOWED: {
  readonly [C in Exclude<ClientCommand, "register">]: {
    role: Role | readonly Role[];
    protocol?: 2;
  };
} = {
  job_request: { role: "producer" },
  cancel: { role: "producer", protocol: 2 },
  set_priority: { role: "producer", protocol: 2 },
  event: { role: "scheduler", protocol: 2 },
  drain: { role: "scheduler", protocol: 2 },
  output: { role: "scheduler", protocol: 2 },
  list: { role: ["producer", "monitor"], protocol: 2 },
  show: { role: ["producer", "monitor"], protocol: 2 },
};

/**
 * Why a registered connection may not send a command, or `undefined` when it may.
 *
 * @param op The command (not `register`).
 * @param role The connection's role (`undefined` before it registered).
 * @param protocol The connection's protocol.
 * @returns `"cancel needs a connection registered as protocol 2 producer"`, or `undefined`.
 * @example
 * ```ts
 * import { roleRefusal } from "./role_table.ts";
 * console.log(roleRefusal("list", "monitor", 2)); // undefined
 * console.log(roleRefusal("event", "producer", 2));
 * // event needs a connection registered as protocol 2 scheduler
 * ```
 */
export function roleRefusal(
  op: Exclude<ClientCommand, "register">,
  role: Role | undefined,
  protocol: 1 | 2,
): string | undefined {
  const allowed = ALLOWED[op];
  const roles = allowed.role;
  if (
    role !== undefined &&
    (typeof roles === "string" ? role === roles : roles.includes(role)) &&
    (allowed.protocol === undefined || protocol === allowed.protocol)
  ) return undefined;
  const named = typeof roles === "string" ? roles : roles.join(" or ");
  const who = allowed.protocol ? `protocol ${allowed.protocol} ${named}` : named;
  return `${op} needs a connection registered as ${who}`;
}
