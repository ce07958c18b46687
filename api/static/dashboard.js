// The Monitoring service's dashboard: signs in on its own origin, then polls
// GET /dashboard/data and draws it. No library: the charts are plain SVG.
"use strict";

const TOKEN_KEY = "lakehouse-dashboard-token";
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2563eb", "#c62828", "#1a7f37", "#b35900", "#7c3aed"];
let timer = null;

const $ = (id) => document.getElementById(id);

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function showLogin(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (timer !== null) { clearTimeout(timer); timer = null; }
  $("board").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  const status = $("status");
  status.textContent = "not signed in";
  status.className = "chip";
}

function signedIn(accessToken) {
  sessionStorage.setItem(TOKEN_KEY, accessToken);
  $("login").hidden = true;
  $("board").hidden = false;
  $("logout").hidden = false;
  refresh();
}

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  const answer = await fetch("/dashboard/login", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: $("username").value, password: $("password").value}),
  });
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    $("login-error").textContent = body.message || `sign-in refused (${answer.status})`;
    return;
  }
  $("password").value = "";
  signedIn(body.access_token);
}

function useToken(event) {
  event.preventDefault();
  const given = $("token").value.trim();
  if (given) { $("token").value = ""; signedIn(given); }
}

function localized(url) {
  // Links name the host the control plane reaches them on; from another machine, a loopback
  // address means the host this page came from.
  try {
    const parsed = new URL(url);
    if (["127.0.0.1", "localhost", "0.0.0.0"].includes(parsed.hostname)) {
      parsed.hostname = window.location.hostname;
    }
    return parsed.toString();
  } catch (_) { return url; }
}

function number(value, unit) {
  if (value === null || value === undefined) return "–";
  if (unit === "bytes") {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = value, i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
  }
  if (unit === "s") {
    if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 1 : 0)} ms`;
    return `${value.toFixed(1)} s`;
  }
  if (Math.abs(value) >= 1000) return value.toFixed(0);
  return value.toFixed(Math.abs(value) < 10 ? 2 : 1).replace(/\.?0+$/, "") || "0";
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
}

function element(name, attributes, parent) {
  const made = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, value);
  if (parent) parent.appendChild(made);
  return made;
}

// lines: [{label, values, unit}] over the times `at`; one scale (the lines share a unit).
function chart(id, at, lines) {
  const svg = $(id);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const width = svg.clientWidth || 420, height = svg.clientHeight || 170;
  const left = 58, right = 8, top = 8, bottom = 34;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const unit = lines[0].unit;
  const known = lines.flatMap((l) => l.values.filter((v) => v !== null && v !== undefined));
  svg.dataset.points = String(known.length);
  if (known.length === 0 || at.length === 0) {
    const text = element("text", {x: width / 2, y: height / 2, "text-anchor": "middle",
                                  class: "empty"}, svg);
    text.textContent = "no data yet";
    return;
  }
  const top_value = Math.max(...known, 0) || 1;
  const low = at[0], high = at[at.length - 1] > at[0] ? at[at.length - 1] : at[0] + 1;
  const x = (t) => left + (t - low) / (high - low) * (width - left - right);
  const y = (v) => top + (1 - v / top_value) * (height - top - bottom);
  for (const fraction of [0, 0.5, 1]) {
    const v = top_value * fraction;
    element("line", {x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid"}, svg);
    const label = element("text", {x: left - 4, y: y(v) + 3, "text-anchor": "end"}, svg);
    label.textContent = number(v, unit);
  }
  for (const t of [low, (low + high) / 2, high]) {
    const label = element("text", {x: x(t), y: height - bottom + 12, "text-anchor": "middle"},
                          svg);
    label.textContent = clock(t);
  }
  lines.forEach((line, n) => {
    const color = COLORS[n % COLORS.length];
    let path = "", pen = "M";
    const missing = (i) => line.values[i] === null || line.values[i] === undefined;
    line.values.forEach((v, i) => {
      if (missing(i)) { pen = "M"; return; }
      path += `${pen}${x(at[i]).toFixed(1)},${y(v).toFixed(1)} `;
      pen = "L";
      if ((i === 0 || missing(i - 1)) && (i === line.values.length - 1 || missing(i + 1))) {
        // A value with no neighbour (one interval with queries) is a dot, not a line.
        element("circle", {cx: x(at[i]), cy: y(v), r: 2.5, fill: color}, svg);
      }
    });
    if (path) element("path", {d: path, class: "line", stroke: color}, svg);
    const last = [...line.values].reverse().find((v) => v !== null && v !== undefined);
    const legend = element("text", {x: left + 4 + n * 130, y: height - 6}, svg);
    legend.setAttribute("fill", color);
    legend.textContent = `${line.label}: ${number(last ?? null, line.unit)}`;
  });
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function drawAlerts(alerts) {
  const body = $("alerts").tBodies[0];
  body.replaceChildren();
  for (const alert of alerts) {
    const row = body.insertRow();
    row.className = alert.state;
    cell(row, alert.name);
    cell(row, alert.severity);
    cell(row, alert.state);
    cell(row, alert.since ? new Date(alert.since).toLocaleString() : "");
    cell(row, alert.value === null ? "" : number(alert.value));
    cell(row, alert.summary);
  }
  $("no-alerts").hidden = alerts.length > 0;
  const firing = alerts.filter((a) => a.state === "firing").length;
  const status = $("status");
  status.textContent = firing ? `${firing} alert${firing > 1 ? "s" : ""} firing`
    : alerts.length ? `${alerts.length} pending` : "all clear";
  status.className = `chip ${firing ? "firing" : alerts.length ? "pending" : "ok"}`;
}

function drawRuns(runs, error) {
  const body = $("runs").tBodies[0];
  body.replaceChildren();
  for (const run of runs) {
    const row = body.insertRow();
    row.className = run.state || "";
    cell(row, run.flow === "ingest" ? "flush" : run.flow);
    cell(row, run.state || "");
    cell(row, run.started ? new Date(run.started).toLocaleString() : "");
    cell(row, number(run.seconds, "s"));
    const link = document.createElement("a");
    link.href = localized(run.url);
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = ["FAILED", "CRASHED"].includes(run.state) ? "why it failed" : "open";
    row.insertCell().appendChild(link);
  }
  $("runs-error").textContent = error || (runs.length ? "" : "No flush or compaction run yet.");
}

function draw(data) {
  const h = data.history;
  chart("chart-ingest", h.at, [
    {label: "records/s", values: h.ingest_records_per_s, unit: ""},
    {label: "rejected/s", values: h.rejected_records_per_s, unit: ""}]);
  chart("chart-backlog", h.at, [{label: "unflushed", values: h.unflushed_bytes, unit: "bytes"}]);
  chart("chart-queries", h.at, [{label: "queries/s", values: h.queries_per_s, unit: ""}]);
  chart("chart-latency", h.at, [
    {label: "p50", values: h.query_p50_s, unit: "s"},
    {label: "p95", values: h.query_p95_s, unit: "s"}]);
  chart("chart-errors", h.at, [
    {label: "failed queries/s", values: h.query_errors_per_s, unit: ""},
    {label: "HTTP 5xx/s", values: h.http_5xx_per_s, unit: ""},
    {label: "shed/s", values: h.shed_requests_per_s, unit: ""}]);
  chart("chart-dask", h.at, [
    {label: "memory", values: h.dask_memory_bytes, unit: "bytes"},
    {label: "limit", values: h.dask_memory_limit_bytes, unit: "bytes"}]);
  const workers = h.dask_workers.length ? h.dask_workers[h.dask_workers.length - 1] : null;
  $("chart-dask").dataset.workers = String(workers);
  const caption = $("chart-dask").parentElement.querySelector("figcaption");
  caption.textContent = `Dask workers (${workers ?? "–"}) and memory`;
  drawAlerts(data.alerts);
  drawRuns(data.runs, data.runs_error);
  $("prefect-link").href = localized(data.links.prefect_ui);
  $("dask-link").href = localized(data.links.dask_dashboard);
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.loaded = "true";
}

async function refresh() {
  timer = null;
  const current = token();
  if (!current) { showLogin(); return; }
  let wait = 5000;
  try {
    const answer = await fetch("/dashboard/data",
                               {headers: {Authorization: `Bearer ${current}`}});
    if (answer.status === 401) { showLogin("Your session ended; sign in again."); return; }
    if (!answer.ok) throw new Error(`the Monitoring service answered ${answer.status}`);
    const data = await answer.json();
    wait = Math.max(1000, Math.min(30000, data.interval_s * 1000));
    draw(data);
  } catch (error) {
    $("updated").textContent = `not updated: ${error.message}; retrying`;
  }
  if (token()) timer = setTimeout(refresh, wait);
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("token-form").addEventListener("submit", useToken);
  $("logout").addEventListener("click", () => showLogin());
  if (token()) signedIn(token()); else showLogin();
});
