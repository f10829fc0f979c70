/**
 * The dashboard's stylesheet (served as `/dashboard.css`, see `dashboard_page.ts`).
 *
 * @module
 */

/** The dashboard's CSS. */
export const DASHBOARD_STYLE = `
:root { --bg: #f6f7f9; --fg: #1d2330; --muted: #667085; --line: #d9dde3; --accent: #2f6fde;
  --ok: #1b873f; --bad: #c4302b; --warn: #b26b00; font: 14px/1.4 system-ui, sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 12px; padding: 8px 16px;
  background: #1d2330; color: #fff; }
header h1 { font-size: 16px; margin: 0 8px 0 0; }
nav a { color: #cfd6e4; text-decoration: none; padding: 4px 8px; border-radius: 4px; }
nav a.active { background: var(--accent); color: #fff; }
.conn { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: var(--warn); }
.conn.up { background: var(--ok); }
.role { font-size: 12px; color: #cfd6e4; }
.token { margin-left: auto; display: flex; gap: 4px; }
.token input { width: 14em; }
main { padding: 12px 16px; }
.message { padding: 8px; background: #fff3cd; border: 1px solid #e6c96b; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px;
  min-width: 180px; }
.card h2 { font-size: 12px; color: var(--muted); margin: 0 0 4px; font-weight: 600; }
.card > b { font-size: 28px; }
.kv { display: flex; justify-content: space-between; gap: 12px; font-size: 13px; }
h2 { font-size: 14px; }
canvas { background: #fff; border: 1px solid var(--line); max-width: 100%; }
table { border-collapse: collapse; width: 100%; background: #fff; margin-top: 8px; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--line);
  font-size: 13px; vertical-align: top; }
th { background: #eef0f4; }
tr.clickable { cursor: pointer; }
tr.clickable:hover { background: #eef4ff; }
.state-succeeded { color: var(--ok); }
.state-failed, .state-timed_out, .state-evicted { color: var(--bad); }
.state-cancelled { color: var(--muted); }
.filters { display: flex; gap: 6px; flex-wrap: wrap; }
pre { background: #0f1420; color: #e4e8f0; padding: 8px; overflow: auto; max-height: 300px; }
.actions { display: flex; gap: 6px; margin: 8px 0; }
button { cursor: pointer; }
.small { font-size: 12px; color: var(--muted); }
`;
