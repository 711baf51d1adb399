// Draconic dashboard: keeps the page current from the WebSocket /jobs/stream (job events,
// shaped by jobs.events.event_payload) and polls stats.json for queue depths and resources.
// No framework, no external assets. Text goes into the DOM through textContent only.
//
// Nothing that changes between the server's render and the socket's subscription is lost:
// the jobs page connects with ?since=<cursor> (the last log id it rendered, then the last
// one it saw) and replays what it missed; the job page re-reads its graph (graph.json) once
// the socket is subscribed, and keeps a node's status only if its cursor is newer.
(function () {
  "use strict";
  var body = document.body;
  var page = body.dataset.page;
  if (page !== "index" && page !== "job") return;

  var state = {
    socket: null, events: 0, retry: 500, lastCursor: {},
    since: body.dataset.since === "" ? null : parseInt(body.dataset.since, 10)
  };
  window.draconicDashboard = state;

  // The graph as rendered: a node's status is as new as the cursor it was drawn from.
  document.querySelectorAll("#graph g.node[data-cursor]").forEach(function (g) {
    state.lastCursor[g.dataset.jobId] = parseInt(g.dataset.cursor, 10) || 0;
  });

  function setWsState(value) {
    body.dataset.ws = value;
    var label = document.getElementById("ws-state");
    if (label) { label.textContent = value === "open" ? "live" : value; label.className = "ws-state ws-" + value; }
  }

  function streamUrl() {
    var params = [];
    if (body.dataset.wsScope) params.push("scope=" + encodeURIComponent(body.dataset.wsScope));
    if (page === "index" && state.since !== null && !isNaN(state.since)) params.push("since=" + state.since);
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.host + "/jobs/stream" + (params.length ? "?" + params.join("&") : "");
  }

  function connect() {
    var socket = new WebSocket(streamUrl());
    state.socket = socket;
    setWsState("connecting");
    socket.onopen = function () { state.retry = 500; };
    socket.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (data && data.type === "subscribed") { onSubscribed(); return; }
      if (data && (data.type === "replay_done" || data.type === "replay_truncated")) {
        refreshStats(); return;
      }
      var events = Array.isArray(data) ? data : (Array.isArray(data.events) ? data.events : [data.event || data]);
      events.forEach(function (ev) { if (ev && ev.job_id && ev.status) handleEvent(ev); });
    };
    socket.onclose = function () {
      setWsState("closed");
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 15000);
    };
  }

  // Live from here on: events flow, and the job page catches up with what it may have missed.
  function onSubscribed() {
    setWsState("open");
    if (page === "job") { refreshGraph(); fetchLogs(); }
  }

  // An event older than one already applied to the same job is ignored (cursor = log id).
  function isStale(jobId, cursor) {
    if (typeof cursor !== "number") return false;
    var last = state.lastCursor[jobId];
    if (last !== undefined && cursor <= last) return true;
    state.lastCursor[jobId] = cursor;
    return false;
  }

  function handleEvent(ev) {
    if (typeof ev.cursor === "number" && (state.since === null || ev.cursor > state.since)) state.since = ev.cursor;
    if (isStale(ev.job_id, ev.cursor)) return;
    state.events += 1;
    if (page === "index") {
      // A replayed change may already be in the rendered counts: the stats poll after the
      // replay sets them instead.
      if (!ev.replay) updateCounts(ev);
      updateRow(ev);
    } else {
      updateGraph(ev);
    }
  }

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge status-" + status;
    span.textContent = status;
    return span;
  }

  function bump(status, delta) {
    var cell = document.querySelector('[data-count="' + status + '"]');
    if (cell) cell.textContent = String(Math.max(0, (parseInt(cell.textContent, 10) || 0) + delta));
  }

  function updateCounts(ev) {
    if (ev.previous_status && ev.previous_status !== ev.status) bump(ev.previous_status, -1);
    if (ev.previous_status !== ev.status) bump(ev.status, +1);
  }

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    if (text !== null) td.textContent = text;
    return td;
  }

  function newRow(ev) {
    var tr = document.createElement("tr");
    tr.dataset.jobId = ev.job_id;
    var idCell = cell(null), link = document.createElement("a"), code = document.createElement("code");
    link.href = body.dataset.jobUrl + encodeURIComponent(ev.job_id) + "/";
    code.textContent = ev.job_id.slice(0, 8);
    link.appendChild(code); idCell.appendChild(link);
    var time = document.createElement("time");
    time.dateTime = ev.timestamp || "";
    time.textContent = (ev.timestamp || "").replace("T", " ").slice(0, 19);
    var created = cell(null); created.appendChild(time);
    [idCell, cell(ev.job_type || ""), cell(ev.priority || ""), cell(null, "status"),
     cell(String(ev.attempt || 0), "attempt"), created].forEach(function (td) { tr.appendChild(td); });
    return tr;
  }

  function updateRow(ev) {
    var tbody = document.querySelector("#jobs tbody");
    if (!tbody) return;
    var row = tbody.querySelector('tr[data-job-id="' + ev.job_id + '"]');
    if (!row) {
      var empty = tbody.querySelector("tr.empty");
      if (empty) empty.remove();
      row = newRow(ev);
      tbody.insertBefore(row, tbody.firstChild);
      var limit = parseInt(document.getElementById("jobs").dataset.limit, 10) || 50;
      while (tbody.rows.length > limit) tbody.deleteRow(tbody.rows.length - 1);
    }
    var statusCell = row.querySelector("td.status");
    statusCell.replaceChildren(badge(ev.status));
    row.querySelector("td.attempt").textContent = String(ev.attempt || 0);
    row.dataset.status = ev.status;
  }

  function setNodeStatus(jobId, status) {
    document.querySelectorAll('#graph g.node[data-job-id="' + jobId + '"]').forEach(function (g) {
      g.setAttribute("class", g.getAttribute("class").replace(/status-\w+/, "status-" + status));
      var label = g.querySelector("text.state");
      if (label) label.textContent = status;
    });
    var section = document.querySelector("section.job");
    if (!section || section.dataset.jobId !== jobId) return false;
    var badgeEl = document.getElementById("job-status");
    badgeEl.className = "badge status-" + status;
    badgeEl.textContent = status;
    return true;
  }

  function updateGraph(ev) {
    if (!setNodeStatus(ev.job_id, ev.status)) return;
    setText("job-attempt", String(ev.attempt || 0));
    state.jobStatus = ev.status;
    fetchLogs();
  }

  // The job page's log: the lines after the newest one shown, from logs.json (a handler's
  // own lines come with no event, so the page also asks every LOG_POLL_MS while the job is
  // not finished). A line already shown (same id) is not added twice.
  var LOG_POLL_MS = 2000;
  var FINISHED = { completed: true, failed: true, cancelled: true };
  var logTable = document.getElementById("logs");
  state.logSince = 0;
  state.fetchingLogs = false;
  if (logTable) {
    logTable.querySelectorAll("tbody tr[data-log-id]").forEach(function (tr) {
      state.logSince = Math.max(state.logSince, parseInt(tr.dataset.logId, 10) || 0);
    });
    var statusEl = document.getElementById("job-status");
    state.jobStatus = statusEl ? statusEl.textContent.trim() : "";
  }

  function addLogLine(line) {
    var tbody = logTable.querySelector("tbody");
    if (tbody.querySelector('tr[data-log-id="' + line.id + '"]')) return;
    var tr = document.createElement("tr");
    tr.className = "level-" + line.level;
    tr.dataset.logId = String(line.id);
    [line.time, String(line.attempt), line.level, line.message].forEach(function (t) { tr.appendChild(cell(t)); });
    var after = null;  // keep id order: a late-committed line may have a lower id
    tbody.querySelectorAll("tr[data-log-id]").forEach(function (row) {
      if (after === null && (parseInt(row.dataset.logId, 10) || 0) > line.id) after = row;
    });
    tbody.insertBefore(tr, after);
    state.logSince = Math.max(state.logSince, line.id);
  }

  // One request at a time; one asked for meanwhile runs when it ends (an event's lines are
  // never left to a poll that a finished job no longer makes).
  function fetchLogs() {
    if (!logTable) return;
    if (state.fetchingLogs) { state.logsAgain = true; return; }
    state.fetchingLogs = true;
    state.logsAgain = false;
    function done() {
      state.fetchingLogs = false;
      if (state.logsAgain) fetchLogs();
    }
    getJson(logTable.dataset.logsUrl + "?since=" + state.logSince).then(function (answer) {
      if (answer) {
        answer.logs.forEach(addLogLine);
        state.jobStatus = answer.status;
        body.dataset.logs = FINISHED[answer.status] ? "final" : "live";
        // A full page means more lines wait: ask for the next page at once.
        if (answer.logs.length >= 200) state.logsAgain = true;
      }
      done();
    }, done);
  }

  if (logTable) {
    setInterval(function () {
      if (!FINISHED[state.jobStatus] && document.visibilityState !== "hidden") fetchLogs();
    }, LOG_POLL_MS);
  }

  function setText(id, text) { var el = document.getElementById(id); if (el) el.textContent = text; }

  function applyStats(stats) {
    Object.keys(stats.jobs_by_status || {}).forEach(function (status) {
      var el = document.querySelector('[data-count="' + status + '"]');
      if (el) el.textContent = String(stats.jobs_by_status[status]);
    });
    Object.keys(stats.queue_depth || {}).forEach(function (queue) {
      var el = document.querySelector('[data-queue="' + queue + '"]');
      var depth = stats.queue_depth[queue];
      if (el) el.textContent = depth === null ? "?" : String(depth);
    });
    var r = stats.resources;
    if (r) {
      [["cpu", r.cpu_units], ["mem", r.memory_mb]].forEach(function (pair) {
        var meter = document.getElementById(pair[0] + "-meter");
        if (meter) { meter.max = pair[1].capacity; meter.value = pair[1].used; }
        setText(pair[0] + "-text", pair[1].used + " / " + pair[1].capacity);
      });
    }
    setText("workers-alive", stats.workers_alive === null ? "?" : String(stats.workers_alive));
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; });
  }

  function refreshStats() {
    if (page !== "index") return Promise.resolve();
    return getJson(body.dataset.statsUrl).then(function (stats) { if (stats) applyStats(stats); })
      .catch(function () {});
  }

  function pollStats() {
    refreshStats().finally(function () { setTimeout(pollStats, 5000); });
  }

  // The graph as it is now; a node changes only if what it was drawn from is older.
  function refreshGraph() {
    var section = document.querySelector("section.job");
    if (!section || !section.dataset.graphUrl) return;
    getJson(section.dataset.graphUrl).then(function (graph) {
      (graph && graph.nodes || []).forEach(function (node) {
        if (!isStale(node.id, node.cursor)) setNodeStatus(node.id, node.status);
      });
    }).catch(function () {});
  }

  connect();
  if (page === "index") setTimeout(pollStats, 5000);
})();
