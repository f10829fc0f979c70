/**
 * The bus's plain HTTP routes (every request but a WebSocket upgrade): `/health`, `/status`,
 * `/metrics`, the dashboard, and the answers to anything else.
 *
 * @module
 */

import type { BusAuth } from "./auth.ts";
import { dashboardResponse } from "./dashboard_page.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";

/** What the routes read from the bus. */
export interface HttpRouteContext {
  /** The `/health` document. */
  health: () => unknown;
  /** The `/status` document. */
  status: () => unknown;
  /** The `/metrics` text and whether it is open without a token (absent: 404). */
  metrics: { text: () => string; open?: boolean | undefined } | undefined;
  /** With --auth: who may read `/status` and `/metrics`. */
  auth: BusAuth | undefined;
}

/**
 * Answers a plain HTTP request: `GET /health` (open), `GET /status` (a monitor or admin token
 * with --auth), `GET /metrics` (a metrics, monitor or admin token with --auth, unless open),
 * the dashboard's files for a browser, 426 at `/` for anything else, 404 elsewhere.
 *
 * @param request The request.
 * @param remote The client's address (rate limits of failed tokens).
 * @param context What the routes read.
 * @returns The response.
 * @example
 * ```ts
 * import { httpRoute } from "./http_routes.ts";
 * const context = { health: () => ({ status: "ok" }), status: () => ({}), metrics: undefined,
 *   auth: undefined };
 * const response = await httpRoute(new Request("http://bus/health"), "127.0.0.1", context);
 * console.log(response.status, await response.json()); // 200 { status: "ok" }
 * ```
 */
export function httpRoute(
  request: Request,
  remote: string,
  context: HttpRouteContext,
): Response | Promise<Response> {
  const { pathname } = new URL(request.url);
  const { auth, metrics } = context;
  const get = request.method === "GET";
  if (get && pathname === "/health") return Response.json(context.health());
  if (get && pathname === "/status") {
    const answer = (): Response => Response.json(context.status());
    if (!auth) return answer();
    return auth.admit(request, remote, { upgrade: false, roles: ["monitor", "admin"] }, answer);
  }
  if (get && pathname === "/metrics" && metrics) {
    const answer = (): Response =>
      new Response(metrics.text(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
    if (!auth || metrics.open) return answer();
    const need = { upgrade: false, roles: ["metrics", "monitor", "admin"] } as const;
    return auth.admit(request, remote, need, answer);
  }
  const page = get ? dashboardResponse(pathname, request) : undefined;
  if (page) return page; // the dashboard (dashboard_page.ts)
  if (pathname === "/") {
    return new Response("sched bus: connect with a WebSocket (see docs/protocol.md)\n", {
      status: 426,
      headers: { upgrade: "websocket" },
    });
  }
  return new Response("not found\n", { status: 404 });
}
