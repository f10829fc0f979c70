/**
 * Which WebSocket upgrades the bus refuses before upgrading: at a path that is not an upgrade
 * path, from a foreign `Origin`, or beyond the most connections.
 *
 * @module
 */

import type { ConnLimits } from "./conn_limits.ts";
import { originRefusal } from "./origin.ts";

/** A refused upgrade: the HTTP status and the `error` of its JSON body. */
export interface UpgradeRefusal {
  /** 400 not an upgrade path, 403 foreign `Origin`, 503 too many connections. */
  status: 400 | 403 | 503;
  /** One line saying why. */
  error: string;
}

/** What {@linkcode upgradeRefusal} needs to know about the bus. */
export interface UpgradeGateState {
  /** Whether the bus serves TLS (its own origin is then `https://`). */
  secure: boolean;
  /** WebSocket connections open now. */
  open: number;
  /** The bus's connection limits. */
  limits: ConnLimits;
}

/**
 * Why the bus refuses an upgrade request, or undefined when it may go on.
 *
 * @param request The upgrade request.
 * @param state See {@linkcode UpgradeGateState}.
 * @returns The refusal, or undefined.
 * @example
 * ```ts
 * import { upgradeRefusal } from "./upgrade_gate.ts";
 * import { ConnLimits } from "./conn_limits.ts";
 * const request = new Request("http://127.0.0.1:8101/", {
 *   headers: { host: "127.0.0.1:8101", origin: "https://evil.example" },
 * });
 * const refusal = upgradeRefusal(request, { secure: false, open: 0, limits: new ConnLimits() });
 * console.log(refusal?.status); // 403
 * ```
 */
export function upgradeRefusal(
  request: Request,
  state: UpgradeGateState,
): UpgradeRefusal | undefined {
  const path = new URL(request.url).pathname;
  if (path === "/health" || path === "/status") {
    return { status: 400, error: `${path} is not an upgrade path: connect to /` };
  }
  const headers = request.headers;
  const origin = originRefusal(headers.get("origin"), headers.get("host"), state.secure);
  if (origin !== undefined) return { status: 403, error: origin };
  if (!state.limits.admit(state.open)) return { status: 503, error: "too many connections" };
  return undefined;
}
