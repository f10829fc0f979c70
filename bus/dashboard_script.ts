/**
 * The dashboard's browser script (served as `/dashboard.js`, see `dashboard_page.ts`): plain
 * JavaScript that registers as a protocol 2 monitor over the bus's WebSocket (with `--auth`, the
 * token from sessionStorage as the `bearer.<base64url>` subprotocol), reconnects with backoff,
 * refreshes `/status` on events (at most one fetch per 300 ms, rendering per animation frame),
 * and queries `list` / `show` for the queue, the jobs and a job's page. Actions (cancel, change
 * priority, drain) are offered only when the token is an admin's: the bus says the token's role
 * in `registered` (`tokenRole`); with an older bus that does not, the page sends a `cancel` of a
 * job that cannot exist and reads the answer (an admin gets "unknown job", anyone else a role
 * refusal).
 *
 * @module
 */

/** The dashboard's JavaScript (no template literals inside: it lives in one). */
export const DASHBOARD_SCRIPT = String.raw`"use strict";
(function () {
  var TOKEN_KEY = "sched.dashboard.token";
  var FINAL = ["succeeded", "failed", "timed_out", "cancelled", "evicted", "delivered"];
  var STATES = ["queued", "started", "suspended", "resumed", "requeued"].concat(FINAL);
  var ROWS = 300;
  var HOUR = 3600000;
  var $ = function (id) { return document.getElementById(id); };
  var st = {
    ws: null, up: false, noAuth: false, retryMs: 250, admin: false, probed: false, pending: [],
    status: null, statusAt: 0, statusBusy: false, statusWanted: true,
    finished: new Map(), rate: new Map(), counters: { events: 0, evicted: 0, requeued: 0 },
    startedAt: new Map(), heard: new Map(), queue: null, jobs: null, job: null,
    dirty: true, framed: false, tab: "overview", jobId: null, queueAt: 0,
  };

  function esc(v) {
    return String(v === undefined || v === null ? "" : v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function ago(ms) {
    if (!(ms >= 0)) return "–";
    if (ms < 1000) return ms + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    if (ms < HOUR) return Math.floor(ms / 60000) + " min";
    return (ms / HOUR).toFixed(1) + " h";
  }
  function when(at) { return at ? new Date(at).toLocaleTimeString() : "–"; }
  function storedToken() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
  // A bus without --auth takes no token (and would fail an upgrade that offers subprotocols).
  function token() { return st.noAuth ? "" : storedToken(); }
  function b64url(text) {
    var bytes = new TextEncoder().encode(text), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  // Replaces an element's HTML only when it changed: no churn under the pointer, less work.
  var shown = new Map();
  function box(id) {
    var el = $(id);
    return { set html(v) { if (shown.get(id) !== v) { shown.set(id, v); el.innerHTML = v; } } };
  }
  function say(text) { var m = $("message"); m.textContent = text || ""; m.hidden = !text; }

  // ---- the connection ----
  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/";
    var t = token();
    var ws = t ? new WebSocket(url, ["sched.v2", "bearer." + b64url(t)]) : new WebSocket(url);
    st.ws = ws;
    ws.onopen = function () {
      ws.send(JSON.stringify({ cmd: "register", type: "monitor", protocol: 2, name: "dashboard" }));
    };
    ws.onmessage = function (e) {
      var msg;
      try { msg = JSON.parse(e.data); } catch (_) { return; }
      onMessage(msg);
    };
    ws.onclose = function () {
      if (st.ws !== ws) return;
      st.ws = null; st.up = false; st.probed = false; st.admin = false;
      st.pending.forEach(function (p) { p.done({ cmd: "error", reason: "connection lost" }); });
      st.pending = [];
      var wait = Math.min(st.retryMs, 10000) * (0.75 + Math.random() / 2);
      st.retryMs = Math.min(st.retryMs * 2, 10000);
      setConn("reconnecting in " + (wait / 1000).toFixed(1) + " s");
      setTimeout(checkThenConnect, wait);
      paintRole();
    };
  }
  // With --auth a browser cannot see why an upgrade failed: ask /status first.
  function checkThenConnect() {
    var probe = storedToken() ? fetch("/status", { cache: "no-store" }).then(function (r) {
      st.noAuth = r.ok;
      return r.body ? r.body.cancel() : undefined;
    }, function () {}) : Promise.resolve();
    probe.then(fetchStatus).then(function (code) {
      if (code === 401) {
        setConn("token needed");
        say("This bus needs a token: paste a monitor or admin token above.");
        st.retryMs = Math.min(st.retryMs * 2, 10000);
        setTimeout(checkThenConnect, Math.max(st.retryMs, 2000));
        return;
      }
      if (code === 0) {
        var wait = Math.min(st.retryMs, 10000);
        st.retryMs = Math.min(st.retryMs * 2, 10000);
        setConn("bus unreachable, retrying in " + (wait / 1000).toFixed(1) + " s");
        setTimeout(checkThenConnect, wait);
        return;
      }
      connect();
    });
  }
  function setConn(text, up) { var c = $("conn"); c.textContent = text; c.className = up ? "conn up" : "conn"; }
  function send(msg, done) {
    if (!st.ws || !st.up) { if (done) done({ cmd: "error", reason: "not connected" }); return; }
    if (done) st.pending.push({ op: msg.cmd, done: done });
    st.ws.send(JSON.stringify(msg));
  }
  function answerOp(msg) {
    if (msg.cmd === "jobs") return "list";
    if (msg.cmd === "job_info") return "show";
    return msg.op;
  }
  function onMessage(msg) {
    if (msg.cmd === "registered") {
      st.up = true; st.retryMs = 250; say("");
      setConn("live", true);
      if (typeof msg.tokenRole === "string") {
        st.admin = msg.tokenRole === "admin"; st.probed = true; paintRole();
      } else if (token()) { // an older bus does not say: probe with a cancel nobody owns
        send({ cmd: "cancel", id: "dashboard-probe/none" }, function (a) {
          st.admin = a.cmd === "ack" || /unknown job/.test(a.reason || "");
          st.probed = true; paintRole(); st.dirty = true; frame();
        });
      } else { st.probed = true; paintRole(); }
      seedFinished(); wantStatus(); loadTab();
      return;
    }
    if (msg.cmd === "event") { onEvent(msg); return; }
    if (msg.cmd === "resync") { seedFinished(); wantStatus(); loadTab(); return; }
    if (msg.cmd === "jobs" || msg.cmd === "job_info" || msg.cmd === "ack" || msg.cmd === "error") {
      var op = answerOp(msg);
      for (var i = 0; i < st.pending.length; i++) {
        if (st.pending[i].op === op) { var p = st.pending.splice(i, 1)[0]; p.done(msg); return; }
      }
      if (msg.cmd === "error") say("bus: " + msg.reason);
    }
  }
  function onEvent(ev) {
    var at = ev.at || Date.now();
    st.counters.events++;
    if (ev.state === "started" || ev.state === "resumed") st.startedAt.set(ev.id, at);
    if (ev.scheduler) st.heard.set(ev.scheduler, Date.now());
    if (ev.state === "evicted") st.counters.evicted++;
    if (ev.state === "requeued") st.counters.requeued++;
    if (ev.final || (FINAL.indexOf(ev.state) >= 0 && ev.state !== "evicted")) {
      st.startedAt.delete(ev.id);
      st.finished.set(ev.id, { at: at, state: ev.state });
      var sec = Math.floor(at / 1000);
      st.rate.set(sec, (st.rate.get(sec) || 0) + 1);
    }
    if (st.job && st.job.id === ev.id) loadJob(ev.id);
    wantStatus();
  }
  // Finished in the last hour: from the bus's records, then kept up to date by events.
  function seedFinished() {
    send({ cmd: "list", states: FINAL, limit: 10000 }, function (a) {
      if (a.cmd !== "jobs") return;
      var now = Date.now();
      a.jobs.forEach(function (j) {
        if (j.endedAt && now - j.endedAt < HOUR && !st.finished.has(j.id)) {
          st.finished.set(j.id, { at: j.endedAt, state: j.state });
        }
      });
      st.dirty = true; frame();
    });
  }

  // ---- /status, batched: at most one fetch per 300 ms, one paint per frame ----
  function fetchStatus() {
    var headers = {};
    if (token()) headers.authorization = "Bearer " + token();
    return fetch("/status", { headers: headers, cache: "no-store" }).then(function (r) {
      if (!r.ok) return r.status;
      return r.json().then(function (s) { st.status = s; st.dirty = true; frame(); return 200; });
    }, function () { return 0; });
  }
  function wantStatus() {
    st.statusWanted = true;
    if (st.statusBusy) return;
    var wait = Math.max(0, 300 - (Date.now() - st.statusAt));
    st.statusBusy = true;
    setTimeout(function () {
      requestAnimationFrame(function () {
        st.statusWanted = false; st.statusAt = Date.now();
        fetchStatus().then(function () {
          st.statusBusy = false;
          if (st.tab === "queue" && Date.now() - st.queueAt > 1000) loadQueue();
          if (st.statusWanted) wantStatus();
        });
      });
    }, wait);
  }
  function frame() {
    if (st.framed) return;
    st.framed = true;
    requestAnimationFrame(function () { st.framed = false; if (st.dirty) { st.dirty = false; paint(); } });
  }
  setInterval(function () { st.dirty = true; frame(); }, 1000); // clocks and the chart move on

  // ---- painting ----
  function paint() {
    paintOverview();
    if (st.tab === "schedulers" || st.tab === "overview") paintSchedulers();
    if (st.tab === "queue") paintQueue();
    if (st.tab === "jobs") paintJobs();
    if (st.tab === "job") paintJob();
  }
  function kv(obj) {
    var keys = Object.keys(obj);
    if (!keys.length) return '<span class="small">none</span>';
    return keys.map(function (k) {
      return '<div class="kv"><span>' + esc(k) + "</span><b data-k=\"" + esc(k) + '">' + esc(obj[k]) + "</b></div>";
    }).join("");
  }
  function running(s) {
    var n = 0, slots = 0, free = 0;
    (s ? s.schedulers : []).forEach(function (x) {
      n += x.running.filter(function (r) { return r.state !== "suspended"; }).length;
      slots += x.slots || 0; free += x.free || 0;
    });
    return { n: n, slots: slots, used: slots - free };
  }
  function paintOverview() {
    var s = st.status, now = Date.now();
    $("waiting-total").textContent = s ? s.queue.length : "–";
    var byP = {};
    if (s) Object.keys(s.queue.byPriority).sort(function (a, b) { return a - b; })
      .forEach(function (p) { byP["priority " + p] = s.queue.byPriority[p]; });
    box("waiting-by-priority").html = kv(byP);
    var r = running(s);
    $("running-total").textContent = s ? r.n : "–";
    $("slots-total").textContent = s ? r.used + " of " + r.slots + " slots used" : "";
    var byOutcome = {};
    st.finished.forEach(function (f, id) {
      if (now - f.at > HOUR) { st.finished.delete(id); return; }
      byOutcome[f.state] = (byOutcome[f.state] || 0) + 1;
    });
    box("finished-hour").html = kv(byOutcome);
    box("counters").html = kv({ events: st.counters.events, evictions: st.counters.evicted,
      requeues: st.counters.requeued, "dropped by bus": s ? s.droppedEvents : "–" });
    drawChart(now);
  }
  function drawChart(now) {
    var c = $("rate-chart"), g = c.getContext("2d"), w = c.width, h = c.height, n = 300;
    var end = Math.floor(now / 1000), max = 1, values = [];
    st.rate.forEach(function (_, sec) { if (sec < end - n) st.rate.delete(sec); });
    for (var i = n - 1; i >= 0; i--) { var v = st.rate.get(end - i) || 0; values.push(v); if (v > max) max = v; }
    g.clearRect(0, 0, w, h);
    g.fillStyle = "#667085"; g.font = "11px sans-serif";
    g.fillText(max + "/s", 4, 12); g.fillText("-5 min", 4, h - 4); g.fillText("now", w - 24, h - 4);
    g.fillStyle = "#2f6fde";
    var bw = (w - 40) / n;
    values.forEach(function (v, i) {
      var bh = (h - 30) * v / max;
      g.fillRect(36 + i * bw, h - 16 - bh, Math.max(bw - 0.5, 0.5), bh);
    });
  }
  function actionButton(label, attrs) {
    if (!st.admin) return "";
    return "<button " + attrs + ">" + esc(label) + "</button>";
  }
  function paintSchedulers() {
    var s = st.status, now = Date.now();
    if (!s) return;
    box("scheduler-rows").html = s.schedulers.map(function (x) {
      var jobs = x.running.slice(0, 50).map(function (r) {
        var started = st.startedAt.get(r.id) || r.since;
        return '<div><a href="#job/' + encodeURIComponent(r.id) + '">' + esc(r.id) + "</a> p" +
          esc(r.priority) + " " + esc(r.state) + (started ? " " + ago(now - started) : "") + "</div>";
      }).join("") + (x.running.length > 50 ? "<div>… " + (x.running.length - 50) + " more</div>" : "");
      var labels = x.labels ? Object.keys(x.labels).map(function (k) { return esc(k + "=" + x.labels[k]); }).join(" ") : "";
      var heard = Math.max(x.heardAt || 0, st.heard.get(x.name) || 0);
      return '<tr data-scheduler="' + esc(x.name) + '"><td>' + esc(x.name) + "</td><td>" + (labels || "–") +
        "</td><td>" + (x.slots === undefined ? "seed" : (x.slots - x.free) + " / " + x.slots) + "</td><td>" +
        (jobs || "–") + "</td><td>" + (heard ? ago(now - heard) + " ago" : "–") + "</td><td>" +
        (x.draining ? "yes" : "no") + "</td><td>" +
        (x.draining ? "" : actionButton("Drain", 'data-drain="' + esc(x.name) + '"')) + "</td></tr>";
    }).join("") || '<tr><td colspan="7">no scheduler connected</td></tr>';
  }
  function loadQueue() {
    st.queueAt = Date.now();
    var q = { cmd: "list", states: ["queued", "requeued"], limit: ROWS };
    var term = $("queue-search").value.trim();
    if (term) q.name = term;
    send(q, function (a) {
      if (a.cmd !== "jobs") return;
      st.queue = a; st.dirty = true; frame();
    });
  }
  function paintQueue() {
    var q = st.queue, now = Date.now();
    if (!q) return;
    var rows = q.jobs.filter(function (j) { return !j.scheduler || j.state === "requeued"; });
    $("queue-count").textContent = (st.status ? st.status.queue.length : q.total) + " waiting; first " +
      rows.length + " shown";
    box("queue-rows").html = rows.map(function (j, i) {
      return '<tr class="clickable" data-job="' + esc(j.id) + '"><td>' + (i + 1) + "</td><td>" + esc(j.id) +
        "</td><td>" + esc(j.name) + "</td><td>" + esc(j.priority) + "</td><td>" + ago(now - j.submittedAt) +
        "</td><td>" + esc(j.owner) + "</td><td>" + esc(j.waiting || (j.state === "requeued" ? "retry backoff" : "its turn")) +
        "</td></tr>";
    }).join("");
  }
  function loadJobs() {
    var q = { cmd: "list", limit: ROWS };
    var state = $("filter-state").value, owner = $("filter-owner").value.trim();
    var name = $("filter-name").value.trim();
    if (state) q.states = [state];
    if (owner) q.owner = owner;
    if (name) q.name = name;
    send(q, function (a) {
      if (a.cmd !== "jobs") { say("list: " + a.reason); return; }
      st.jobs = a; st.dirty = true; frame();
    });
  }
  function paintJobs() {
    var q = st.jobs;
    if (!q) return;
    var p = $("filter-priority").value;
    var rows = q.jobs.filter(function (j) { return p === "" || j.priority === Number(p); });
    $("jobs-count").textContent = q.total + " match; " + rows.length + " shown";
    box("job-rows").html = rows.map(function (j) {
      return '<tr class="clickable" data-job="' + esc(j.id) + '"><td>' + esc(j.id) + "</td><td>" + esc(j.name) +
        '</td><td class="state-' + esc(j.state) + '">' + esc(j.state) + "</td><td>" + esc(j.priority) +
        "</td><td>" + esc(j.owner) + "</td><td>" + esc(j.scheduler) + "</td><td>" + when(j.submittedAt) +
        "</td><td>" + esc(j.attempts) + "</td></tr>";
    }).join("");
  }
  function loadJob(id) {
    send({ cmd: "show", id: id }, function (a) {
      if (a.cmd !== "job_info") { st.job = { id: id, error: a.reason }; } else { st.job = a.job; }
      st.dirty = true; frame();
    });
  }
  function paintJob() {
    var j = st.job;
    if (!j) return;
    $("job-title").textContent = "Job " + j.id;
    if (j.error) { box("job-body").html = "<p>" + esc(j.error) + "</p>"; box("job-actions").html = ""; return; }
    var live = FINAL.indexOf(j.state) < 0;
    box("job-actions").html = !st.admin
      ? '<span class="small" id="read-only-note">read-only: actions need an admin token</span>'
      : live ? '<button id="job-cancel">Cancel</button><input id="job-priority" type="number" min="0" max="10" value="' +
        esc(j.priority) + '"><button id="job-set-priority">Change priority</button>' : "";
    var r = j.result || {};
    var facts = { state: j.state, priority: j.priority, owner: j.owner, scheduler: j.scheduler || "–",
      submitted: when(j.submittedAt), started: when(j.startedAt), ended: when(j.endedAt), attempts: j.attempts,
      "exit code": r.code === undefined ? "–" : r.code, signal: r.signal || "–",
      duration: r.durationMs === undefined ? "–" : ago(r.durationMs), reason: j.reason || "–" };
    var spec = Object.assign({}, j.payload || {});
    box("job-body").html = '<div class="card">' + kv(facts) + "</div>" +
      "<h2>Spec</h2><pre>" + esc(JSON.stringify(spec, null, 2)) + "</pre>" +
      "<h2>stdout (tail)</h2><pre id=\"job-stdout\">" + esc(r.stdoutTail || "") + "</pre>" +
      "<h2>stderr (tail)</h2><pre id=\"job-stderr\">" + esc(r.stderrTail || "") + "</pre>" +
      "<h2>History</h2><table><tr><th>At</th><th>State</th><th>Scheduler</th><th>Reason</th></tr>" +
      (j.history || []).map(function (h) {
        return "<tr><td>" + when(h.at) + "</td><td>" + esc(h.state) + "</td><td>" + esc(h.scheduler) +
          "</td><td>" + esc(h.reason) + "</td></tr>";
      }).join("") + "</table>";
  }
  function paintRole() {
    var text = !st.up ? "" : st.admin ? "admin token: actions enabled"
      : token() ? "read-only (this token may not act)"
      : st.noAuth && storedToken() ? "read-only (this bus has no --auth: tokens are not used)"
      : "read-only (no token)";
    $("role").textContent = st.probed ? text : "";
    $("role").dataset.admin = st.admin ? "yes" : "no";
  }

  // ---- navigation and actions ----
  function route() {
    var h = location.hash.replace(/^#/, "") || "overview";
    if (h.indexOf("job/") === 0) { st.tab = "job"; st.jobId = decodeURIComponent(h.slice(4)); }
    else st.tab = ["overview", "schedulers", "queue", "jobs"].indexOf(h) >= 0 ? h : "overview";
    document.querySelectorAll("[data-view]").forEach(function (v) {
      v.hidden = v.id !== st.tab && !(st.tab === "overview" && v.id === "schedulers");
    });
    document.querySelectorAll("nav a").forEach(function (a) {
      a.className = a.dataset.tab === st.tab ? "active" : "";
    });
    loadTab(); st.dirty = true; frame();
  }
  function loadTab() {
    if (!st.up) return;
    if (st.tab === "queue") loadQueue();
    if (st.tab === "jobs") loadJobs();
    if (st.tab === "job" && st.jobId) loadJob(st.jobId);
  }
  function act(msg, what) {
    send(msg, function (a) {
      say(a.cmd === "ack" ? what + ": done" : what + " refused: " + a.reason);
      wantStatus(); loadTab();
    });
  }
  document.addEventListener("click", function (e) {
    var t = e.target;
    if (t.id === "job-cancel" && st.job) act({ cmd: "cancel", id: st.job.id }, "cancel " + st.job.id);
    if (t.id === "job-set-priority" && st.job) {
      act({ cmd: "set_priority", id: st.job.id, priority: Number($("job-priority").value) },
        "priority of " + st.job.id);
    }
    if (t.dataset && t.dataset.drain) act({ cmd: "drain", scheduler: t.dataset.drain }, "drain " + t.dataset.drain);
    var row = t.closest && t.closest("tr[data-job]");
    if (row) location.hash = "job/" + encodeURIComponent(row.dataset.job);
  });
  $("token-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var v = $("token-input").value.trim();
    $("token-input").value = "";
    if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY);
    restart();
  });
  $("token-forget").addEventListener("click", function () { sessionStorage.removeItem(TOKEN_KEY); restart(); });
  function restart() {
    var ws = st.ws;
    st.ws = null; st.up = false; st.admin = false; st.probed = false; st.pending = []; st.retryMs = 250;
    if (ws) ws.close();
    paintRole(); checkThenConnect();
  }
  $("jobs-filter").addEventListener("submit", function (e) { e.preventDefault(); loadJobs(); });
  var searchTimer = 0;
  $("queue-search").addEventListener("input", function () {
    clearTimeout(searchTimer); searchTimer = setTimeout(loadQueue, 200);
  });
  STATES.forEach(function (s) {
    var o = document.createElement("option"); o.value = s; o.textContent = s; $("filter-state").appendChild(o);
  });
  window.addEventListener("hashchange", route);
  route();
  checkThenConnect();
})();
`;
