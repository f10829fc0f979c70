/**
 * The live dashboard the bus serves at `GET /` (issue 12): one HTML page, its stylesheet and its
 * script, held in memory as strings (no build step, no runtime dependency), each served with a
 * strict Content-Security-Policy (no inline script or style, connections to the bus only).
 *
 * @module
 */

import { DASHBOARD_STYLE } from "./dashboard_style.ts";
import { DASHBOARD_SCRIPT } from "./dashboard_script.ts";

/**
 * The Content-Security-Policy of every dashboard response: scripts and styles from the bus
 * only (no inline code), fetch and WebSocket to the bus only, no frames, forms or plugins.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The page's HTML: the skeleton the script fills in. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sched bus</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>sched bus</h1>
  <nav>
    <a href="#overview" data-tab="overview">Overview</a>
    <a href="#schedulers" data-tab="schedulers">Schedulers</a>
    <a href="#queue" data-tab="queue">Queue</a>
    <a href="#jobs" data-tab="jobs">Jobs</a>
  </nav>
  <span id="conn" class="conn">connecting…</span>
  <span id="role" class="role"></span>
  <form id="token-form" class="token">
    <input id="token-input" type="password" placeholder="token (sched_…)" autocomplete="off">
    <button id="token-save" type="submit">Use token</button>
    <button id="token-forget" type="button">Forget</button>
  </form>
</header>
<main>
  <p id="message" class="message" hidden></p>
  <section id="overview" data-view>
    <div class="cards">
      <div class="card"><h2>Waiting</h2><b id="waiting-total">–</b><div id="waiting-by-priority"></div></div>
      <div class="card"><h2>Running</h2><b id="running-total">–</b><div id="slots-total"></div></div>
      <div class="card"><h2>Finished, last hour</h2><div id="finished-hour"></div></div>
      <div class="card"><h2>Since page opened</h2><div id="counters"></div></div>
    </div>
    <h2>Jobs finished per second, last 5 minutes</h2>
    <canvas id="rate-chart" width="900" height="160"></canvas>
  </section>
  <section id="schedulers" data-view hidden>
    <h2>Schedulers</h2>
    <table><thead><tr><th>Name</th><th>Labels</th><th>Slots used</th><th>Running</th>
    <th>Last heard</th><th>Draining</th><th></th></tr></thead><tbody id="scheduler-rows"></tbody></table>
  </section>
  <section id="queue" data-view hidden>
    <input id="queue-search" type="search" placeholder="search id or name">
    <span id="queue-count"></span>
    <table><thead><tr><th>#</th><th>Id</th><th>Name</th><th>Priority</th><th>Waited</th>
    <th>Owner</th><th>Why it waits</th></tr></thead><tbody id="queue-rows"></tbody></table>
  </section>
  <section id="jobs" data-view hidden>
    <form id="jobs-filter" class="filters">
      <select id="filter-state"><option value="">any state</option></select>
      <input id="filter-owner" placeholder="owner">
      <input id="filter-name" placeholder="id or name">
      <input id="filter-priority" type="number" min="0" max="10" placeholder="priority">
      <button type="submit">Filter</button>
    </form>
    <span id="jobs-count"></span>
    <table><thead><tr><th>Id</th><th>Name</th><th>State</th><th>Priority</th><th>Owner</th>
    <th>Scheduler</th><th>Submitted</th><th>Attempts</th></tr></thead><tbody id="job-rows"></tbody></table>
  </section>
  <section id="job" data-view hidden>
    <h2 id="job-title"></h2>
    <div id="job-actions" class="actions"></div>
    <div id="job-body"></div>
  </section>
</main>
</body>
</html>
`;

/**
 * The dashboard's response for a `GET` of `path`: the page at `/` (and `/index.html`) for a
 * request that accepts HTML (a browser; a client that does not, such as `curl` or `fetch`, keeps
 * getting the bus's 426 at `/`), its stylesheet and script; `undefined` for any other path.
 *
 * @param path The request's path.
 * @param request The request (its `Accept` header), when there is one.
 * @returns The response, with the dashboard's Content-Security-Policy, or `undefined`.
 * @example
 * ```ts
 * import { dashboardResponse } from "./dashboard_page.ts";
 * const browser = new Request("http://127.0.0.1/", { headers: { accept: "text/html" } });
 * const page = dashboardResponse("/", browser);
 * console.log(page?.headers.get("content-type")); // text/html; charset=utf-8
 * console.log(dashboardResponse("/", new Request("http://127.0.0.1/"))); // undefined
 * console.log(dashboardResponse("/dashboard.js")?.status); // 200
 * ```
 */
export function dashboardResponse(path: string, request?: Request): Response | undefined {
  const html = request === undefined || /\btext\/html\b/.test(request.headers.get("accept") ?? "");
  const asset = (path === "/" || path === "/index.html") && html
    ? { body: DASHBOARD_HTML, type: "text/html; charset=utf-8" }
    : path === "/dashboard.css"
    ? { body: DASHBOARD_STYLE, type: "text/css; charset=utf-8" }
    : path === "/dashboard.js"
    ? { body: DASHBOARD_SCRIPT, type: "text/javascript; charset=utf-8" }
    : undefined;
  if (asset === undefined) return undefined;
  return new Response(asset.body, {
    headers: {
      "content-type": asset.type,
      "content-security-policy": DASHBOARD_CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-cache",
    },
  });
}
