// driftwatch governance dashboard: plain JavaScript, no dependencies, everything from this server.
"use strict";

const SVG_NS = "http:" + "//www.w3.org/2000/svg";
const TOKEN_KEY = "driftwatch.token";
const state = { config: { auth: true, grafana_url: null, image_origins: [] }, monitors: [], events: [], next: null, selected: null };

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, String(v));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

class ApiError extends Error {
  constructor(status, reason, message) { super(message); this.status = status; this.reason = reason; }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (token()) headers.Authorization = "Bearer " + token();
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { ...options, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  } catch (err) {
    throw new ApiError(0, "Network", "The server cannot be reached: " + err.message);
  }
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    const e = (body && body.error) || {};
    throw new ApiError(response.status, e.reason || response.statusText, e.message || ("HTTP " + response.status));
  }
  return body;
}

function banner(text, kind) {
  const b = $("banner");
  if (!text) { b.hidden = true; b.textContent = ""; return; }
  b.hidden = false; b.className = "banner" + (kind ? " " + kind : ""); b.textContent = text;
}

// How to get a token, shown whenever one is missing or refused.
const TOKEN_HELP = "Get one with `kubectl create token <serviceaccount> -n <namespace>` for a ServiceAccount bound to " +
  "driftwatch-viewer (to look) or driftwatch-approver (to decide), paste your own OIDC token, or open the dashboard " +
  "through the OIDC proxy your cluster provides (docs/dashboard.md, \"Signing in\").";

// A readable sentence for an API error: what happened and what to do.
function explain(err, what) {
  if (err.status === 401) {
    return token()
      ? "Your token was not accepted — it may have expired. Sign in again with a fresh token. " + TOKEN_HELP +
        " (The server said: " + err.message + ")"
      : "A Kubernetes bearer token is needed to see " + what + ". " + TOKEN_HELP;
  }
  if (err.status === 403) {
    const hint = $("filter-namespace").value.trim() ? "" : " If you may read only some namespaces, enter one in the Namespace filter.";
    return "You are signed in but not allowed to see " + what + ": " + err.message +
      ". Ask an administrator for driftwatch-viewer in that namespace." + hint;
  }
  return "Cannot load " + what + ": " + err.message;
}

function handleError(err, what = "this") {
  banner(explain(err, what), "error");
  if (err.status === 401) $("token").focus();
}

// Puts a message where monitors or events would be (never leaves "Loading…" behind).
function showMessage(box, text, kind) {
  box.replaceChildren(el("p", { class: "message " + (kind || "muted"), role: "status", text }));
}

function showEventsMessage(text, kind) {
  $("events").replaceChildren();
  const p = $("events-empty");
  p.className = "message " + (kind || "muted");
  p.textContent = text;
  p.hidden = false;
  $("more").hidden = true;
}

function fmtTime(text) {
  if (!text) return "–";
  const d = new Date(text);
  return isNaN(d) ? text : d.toISOString().replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC");
}
function fmtNum(x, digits = 4) { return typeof x === "number" && isFinite(x) ? x.toFixed(digits) : "–"; }
function badge(status) { return el("span", { class: "badge " + status, "data-status": status, text: status }); }

// ---- monitors -------------------------------------------------------------------------------------

function seriesOf(history) {
  // One line per detector (method/source), in history order (oldest first).
  const series = new Map();
  history.forEach((entry, i) => {
    for (const s of entry.scores || []) {
      const key = s.method + " · " + s.source;
      if (!series.has(key)) series.set(key, { key, points: [], threshold: null });
      const line = series.get(key);
      line.points.push({ i, score: s.score, drifted: s.drifted, time: entry.time });
      if (typeof s.threshold === "number") line.threshold = s.threshold;
    }
  });
  return [...series.values()];
}

function historyChart(monitor) {
  const history = monitor.history || [];
  const lines = seriesOf(history).slice(0, 4);
  const W = 420, H = 150, L = 40, R = 8, T = 8, B = 22;
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Drift score history of " + monitor.name, "data-testid": "history-chart" });
  if (!lines.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", text: "No checks recorded yet" }));
    return root;
  }
  const first = lines[0];
  const values = lines.flatMap((l) => l.points.map((p) => p.score)).concat(first.threshold !== null ? [first.threshold] : []);
  const max = Math.max(...values, 1e-9) * 1.15;
  const n = Math.max(history.length - 1, 1);
  const x = (i) => L + (i / n) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    root.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    root.append(svg("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end", text: v.toPrecision(2) }));
  }
  root.append(svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  if (history.length) {
    root.append(svg("text", { x: L, y: H - 6, text: fmtTime(history[0].time) }));
    root.append(svg("text", { x: W - R, y: H - 6, "text-anchor": "end", text: fmtTime(history[history.length - 1].time) }));
  }
  lines.forEach((line, k) => {
    const d = line.points.map((p, j) => (j ? "L" : "M") + x(p.i).toFixed(1) + " " + y(p.score).toFixed(1)).join(" ");
    root.append(svg("path", { class: "score s" + k, d, "data-series": line.key }));
    if (k === 0) {
      for (const p of line.points) {
        const dot = svg("circle", { class: "point" + (p.drifted ? " drifted" : ""), cx: x(p.i), cy: y(p.score), r: 2.6 });
        dot.append(svg("title", { text: `${fmtTime(p.time)}: ${fmtNum(p.score)}` }));
        root.append(dot);
      }
    }
  });
  if (first.threshold !== null) {
    root.append(svg("line", { class: "threshold", x1: L, x2: W - R, y1: y(first.threshold), y2: y(first.threshold), "data-testid": "threshold-line" }));
  }
  return root;
}

// The configured Grafana panel for a monitor, below the built-in chart (which works without Grafana).
function grafanaFrame(monitor) {
  const url = new URL(state.config.grafana_url, window.location.href);
  url.searchParams.set("var-namespace", monitor.namespace);
  url.searchParams.set("var-monitor", monitor.name);
  return el("iframe", { class: "grafana", src: url.toString(), title: "Grafana: " + monitor.name, "data-testid": "grafana-panel" });
}

function conditionBadges(monitor) {
  const box = el("div", { class: "conditions" });
  for (const c of monitor.conditions || []) {
    const bad = (c.type === "Degraded" && c.status === "True") || (c.type === "Ready" && c.status !== "True") || (c.type === "Drifted" && c.status === "True");
    const b = el("span", { class: "badge " + (bad ? "warn" : c.status === "True" ? "true" : "false"), title: (c.reason || "") + ": " + (c.message || ""), text: c.type + "=" + c.status });
    box.append(b);
  }
  if (!box.childElementCount) box.append(el("span", { class: "muted", text: "no conditions yet" }));
  return box;
}

function renderMonitors() {
  const box = $("monitors");
  box.replaceChildren();
  if (!state.monitors.length) { showMessage(box, "No DriftMonitors."); return; }
  for (const m of state.monitors) {
    const legend = el("div", { class: "legend" });
    seriesOf(m.history || []).slice(0, 4).forEach((l, k) => legend.append(el("span", {}, el("i", { class: "s" + k }), l.key)));
    if (seriesOf(m.history || []).some((l) => l.threshold !== null)) legend.append(el("span", {}, el("i", { class: "threshold" }), "threshold"));
    const card = el("article", { class: "monitor", "data-monitor": m.namespace + "/" + m.name },
      el("header", {}, el("span", { class: "name", text: m.namespace + "/" + m.name }),
        el("span", { class: "meta", text: (m.suspend ? "suspended · " : "") + m.schedule + " · " + m.collection })),
      conditionBadges(m),
      el("div", { class: "meta", text: "Last score " + fmtNum(m.last_score) + " · last check " + fmtTime(m.last_schedule_time) + " · next " + fmtTime(m.next_schedule_time) }),
      historyChart(m),
      legend,
      state.config.grafana_url ? grafanaFrame(m) : null,
      m.open_event ? el("div", { class: "meta" }, "Open event: ", el("a", { href: "#" + m.open_event, "data-open-event": m.open_event, text: m.open_event })) : null);
    box.append(card);
  }
  box.querySelectorAll("a[data-open-event]").forEach((a) => a.addEventListener("click", (ev) => { ev.preventDefault(); showDetails(a.dataset.openEvent); }));
}

async function loadMonitors() {
  const ns = $("filter-namespace").value.trim();
  const body = await api("/api/v1/monitors" + (ns ? "?namespace=" + encodeURIComponent(ns) : ""));
  state.monitors = body.monitors || [];
  renderMonitors();
}

// ---- events ---------------------------------------------------------------------------------------

function eventQuery(cont) {
  const q = new URLSearchParams();
  const ns = $("filter-namespace").value.trim();
  const monitor = $("filter-monitor").value.trim();
  const status = $("filter-status").value;
  if (ns) q.set("namespace", ns);
  if (monitor) q.set("monitor", monitor);
  if (status) q.set("status", status);
  q.set("limit", "50");
  if (cont) q.set("continue", cont);
  return "/api/v1/drift-events?" + q.toString();
}

function renderEvents() {
  const body = $("events");
  body.replaceChildren();
  for (const e of state.events) {
    const row = el("tr", { "data-event-id": e.event_id, class: state.selected === e.event_id ? "selected" : "" },
      el("td", { text: e.event_id }), el("td", { text: fmtTime(e.timestamp) }),
      el("td", { class: "num", text: fmtNum(e.drift_score) }), el("td", {}, badge(e.status)));
    row.addEventListener("click", () => showDetails(e.event_id));
    body.append(row);
  }
  const empty = $("events-empty");
  empty.className = "muted";
  empty.textContent = "No drift events match.";
  empty.hidden = state.events.length > 0;
  $("more").hidden = !state.next;
}

async function loadEvents(append) {
  const page = await api(eventQuery(append ? state.next : null));
  state.events = append ? state.events.concat(page.events) : page.events;
  state.next = page.continue || null;
  renderEvents();
}

// ---- details --------------------------------------------------------------------------------------

function distributionPicture(event, monitor) {
  const box = $("details-distribution");
  box.replaceChildren();
  // Histograms along the top principal components, when the check result carries them.
  const result = monitor && monitor.last_result;
  const summary = result && (result.distribution || result.summary);
  const sameCheck = result && event.spec.checkId && result.checkId === event.spec.checkId;
  if (summary && sameCheck && Array.isArray(summary.components) && summary.components.length) {
    summary.components.slice(0, 2).forEach((c, k) => box.append(histogram(c, "PC" + (k + 1))));
    box.append(el("div", { class: "legend" }, el("span", {}, el("i", { class: "ref" }), "reference"), el("span", {}, el("i", { class: "cmp" }), "comparison")));
    return;
  }
  // Otherwise: every detector's score against its threshold.
  box.append(el("p", { class: "muted", text: "Histograms along the principal components are not recorded for this check; each detector's score against its threshold:" }));
  box.append(scoreBars(event.spec.scores || []));
}

function histogram(component, label) {
  const W = 420, H = 150, L = 8, R = 8, T = 8, B = 22;
  const ref = component.reference || [], cmp = component.comparison || [];
  const bins = Math.max(ref.length, cmp.length, 1);
  const norm = (xs) => { const s = xs.reduce((a, b) => a + b, 0) || 1; return xs.map((v) => v / s); };
  const r = norm(ref), c = norm(cmp);
  const max = Math.max(...r, ...c, 1e-9);
  const bw = (W - L - R) / bins;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label + " histogram" });
  for (let i = 0; i < bins; i++) {
    const hr = ((r[i] || 0) / max) * (H - T - B), hc = ((c[i] || 0) / max) * (H - T - B);
    root.append(svg("rect", { class: "ref", x: L + i * bw, y: H - B - hr, width: Math.max(bw - 1, 1), height: hr }));
    root.append(svg("rect", { class: "cmp", x: L + i * bw, y: H - B - hc, width: Math.max(bw - 1, 1), height: hc }));
  }
  const [lo, hi] = component.range || [0, 1];
  root.append(svg("text", { x: L, y: H - 6, text: fmtNum(lo, 2) }));
  root.append(svg("text", { x: W / 2, y: H - 6, "text-anchor": "middle", text: label }));
  root.append(svg("text", { x: W - R, y: H - 6, "text-anchor": "end", text: fmtNum(hi, 2) }));
  return root;
}

function scoreBars(scores) {
  const W = 420, rowH = 26, L = 150, R = 60;
  const H = Math.max(scores.length, 1) * rowH + 10;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Scores against thresholds", class: "bars" });
  scores.forEach((s, k) => {
    const scale = Math.max(s.score, s.threshold || 0, 1e-9) * 1.2;
    const w = (v) => (v / scale) * (W - L - R);
    const y = 5 + k * rowH;
    root.append(svg("text", { x: 0, y: y + 14, text: s.method + " · " + s.source }));
    root.append(svg("rect", { class: "bar-score" + (s.drifted ? " drifted" : ""), x: L, y: y + 4, width: Math.max(w(s.score), 1), height: 14 }));
    if (typeof s.threshold === "number") root.append(svg("line", { class: "threshold", x1: L + w(s.threshold), x2: L + w(s.threshold), y1: y, y2: y + 22 }));
    root.append(svg("text", { x: W - R + 4, y: y + 14, text: fmtNum(s.score, 3) }));
  });
  return root;
}

const pct = (x) => (typeof x === "number" ? (100 * x).toFixed(1) + "%" : "–");

// A display value: http(s) URLs become links (opened without referrer), with a thumbnail when the URL is on
// an image origin the server allows (the page's policy lets no other image in); anything else is text.
function displayValue(value) {
  if (!/^https?:\/\//i.test(value)) return document.createTextNode(value);
  const link = el("a", { href: value, target: "_blank", rel: "noopener noreferrer", text: value });
  let origin = null;
  try { origin = new URL(value).origin; } catch (_) { /* not a URL after all: a plain link */ }
  if (origin && (state.config.image_origins || []).includes(origin)) {
    link.prepend(el("img", { class: "thumbnail", src: value, alt: "", referrerpolicy: "no-referrer" }));
  }
  return link;
}

// What changed and where: the slices table, the region shares and the example points with their links.
function renderExplanation(explanation) {
  const box = $("details-explanation");
  box.hidden = !explanation;
  if (!explanation) return;
  const slices = $("explanation-slices"), regions = $("explanation-regions"), examples = $("explanation-examples");
  slices.replaceChildren(); regions.replaceChildren(); examples.replaceChildren();
  $("explanation-slices-note").textContent = (explanation.slicesTested !== undefined ? explanation.slicesTested + " slices tested (Benjamini–Hochberg across them)" : "")
    + (explanation.truncated ? " · cut to fit" : "");
  for (const s of explanation.slices || []) {
    slices.append(el("tr", { class: "slice-" + s.status }, el("td", { text: s.field }), el("td", { text: s.value }),
      el("td", {}, el("span", { class: "badge " + (s.status === "drifted" || s.status === "appeared" ? "warn" : "false"), text: s.status })),
      el("td", { class: "num", text: `${s.counts[0]} (${pct(s.shares[0])})` }), el("td", { class: "num", text: `${s.counts[1]} (${pct(s.shares[1])})` }),
      el("td", { class: "num", text: fmtNum(s.pValue) }), el("td", { class: "num", text: fmtNum(s.adjustedPValue) })));
  }
  if (!slices.childElementCount) slices.append(el("tr", {}, el("td", { class: "muted", colspan: 7, text: "no slice fields configured" })));
  for (const r of explanation.regions || []) {
    // Widths through the CSSOM: the content security policy allows no inline style attributes.
    const share = (which, x) => {
      const span = el("span", { class: "share " + which, title: which + " " + pct(x) });
      span.style.width = Math.round(100 * x) + "%";
      return span;
    };
    const bar = el("div", { class: "share-bars" }, share("reference", r.shares[0]), share("comparison", r.shares[1]));
    regions.append(el("tr", { class: "region-" + r.kind }, el("td", { text: String(r.region) }), el("td", { text: r.kind }),
      el("td", { class: "num", text: `${r.counts[0]} (${pct(r.shares[0])})` }), el("td", { class: "num", text: `${r.counts[1]} (${pct(r.shares[1])})` }),
      el("td", {}, bar)));
  }
  const items = [
    ...(explanation.slices || []).map((s) => [s.field + " = " + s.value, s.examples]),
    ...(explanation.regions || []).map((r) => ["region " + r.region + " (" + r.kind + ")", r.examples]),
  ];
  for (const [what, points] of items) {
    for (const p of points || []) {
      const li = el("li", { class: "example" }, el("span", { class: "muted", text: what + ": " }), el("code", { text: p.id }));
      for (const [k, v] of Object.entries(p.fields || {})) li.append(" · " + k + " ", displayValue(v));
      examples.append(li);
    }
  }
  if (!examples.childElementCount) examples.append(el("li", { class: "muted", text: "no example points" }));
}

async function showDetails(eventId) {
  state.selected = eventId;
  renderEvents();
  const [ns, name] = eventId.split("/");
  let detail;
  try {
    detail = await api("/api/v1/drift-events/" + encodeURIComponent(ns) + "/" + encodeURIComponent(name));
  } catch (err) { handleError(err, "this event"); return; }
  const { event, object, actionable } = detail;
  const spec = object.spec, status = object.status || {};
  const monitor = state.monitors.find((m) => m.namespace === ns && m.name === spec.monitorRef.name);
  $("details").hidden = false;
  $("details").dataset.eventId = eventId;
  $("details-title").textContent = eventId;
  $("details-status").replaceWith(Object.assign(badge(event.status), { id: "details-status" }));
  const facts = $("details-facts");
  facts.replaceChildren();
  const samples = spec.samples || {};
  const win = (w) => fmtTime(w.start_time) + " → " + fmtTime(w.end_time);
  const rows = [
    ["Monitor", event.monitor], ["Detected", fmtTime(event.timestamp)], ["Drift score", fmtNum(event.drift_score)],
    ["Reference window", win(event.reference_window) + (spec.referenceWindow.collection ? " (" + spec.referenceWindow.collection + ")" : "")],
    ["Comparison window", win(event.comparison_window)],
    ["Samples", spec.samples ? `reference ${samples.reference}${samples.referenceAvailable !== undefined ? " of " + samples.referenceAvailable : ""} · comparison ${samples.comparison}${samples.comparisonAvailable !== undefined ? " of " + samples.comparisonAvailable : ""}` : "–"],
    ["Occurrences", status.occurrences !== undefined ? String(status.occurrences) : "1"],
    ["Raised by", spec.source || "controller"],
    ["Decision", spec.approval ? `${spec.approval.decision} by ${spec.approval.approvedBy}${spec.approval.reason ? " — " + spec.approval.reason : ""}` : "pending"],
  ];
  const target = status.retrainingTarget;
  if (detail.nothing_to_trigger) rows.push(["Retraining target", "nothing to trigger: " + detail.nothing_to_trigger]);
  else if (target) rows.push(["Retraining target", target.summary + (target.approvedAt ? " (as approved " + fmtTime(target.approvedAt) + ")" : "")]);
  if (status.retraining) {
    const r = status.retraining;
    rows.push(["Retraining", [r.jobName && "job " + r.jobName, r.s3Uri, r.retrainingJobId && "pipeline job " + r.retrainingJobId, r.lastError].filter(Boolean).join(" · ") || "–"]);
  }
  for (const [k, v] of rows) facts.append(el("dt", { text: k }), el("dd", { text: v }));
  const scores = $("details-scores");
  scores.replaceChildren();
  for (const s of spec.scores || []) {
    scores.append(el("tr", {}, el("td", { text: s.method }), el("td", { text: s.source }), el("td", { class: "num", text: fmtNum(s.score) }),
      el("td", { class: "num", text: fmtNum(s.threshold) }), el("td", { class: "num", text: fmtNum(s.pValue) }),
      el("td", {}, el("span", { class: "badge " + (s.drifted ? "warn" : "false"), text: s.drifted ? "yes" : "no" }))));
  }
  const trail = $("details-trail");
  trail.replaceChildren();
  for (const t of status.transitions || []) {
    trail.append(el("li", { text: `${fmtTime(t.time)} — ${t.phase}${t.actor ? " by " + t.actor : ""}${t.message ? ": " + t.message : ""}` }));
  }
  if (!trail.childElementCount) trail.append(el("li", { class: "muted", text: "no transitions recorded yet" }));
  renderExplanation(detail.explanation || status.explanation);
  distributionPicture(object, monitor);
  $("approve").disabled = !actionable || !!detail.nothing_to_trigger;
  $("ignore").disabled = !actionable;
  $("reason").disabled = !actionable;
  const fb = $("decision-feedback");
  fb.className = "feedback";
  fb.textContent = actionable ? (detail.nothing_to_trigger ? "Nothing to trigger: " + detail.nothing_to_trigger + " Only Ignore applies." : "") : spec.approval
    ? `Decided: ${spec.approval.decision} by ${spec.approval.approvedBy}. A decision is made once.`
    : `This event is ${event.status}: there is nothing to decide.`;
}

async function decide(action) {
  const eventId = $("details").dataset.eventId;
  const fb = $("decision-feedback");
  const reason = $("reason").value.trim();
  $("approve").disabled = $("ignore").disabled = true;
  fb.className = "feedback"; fb.textContent = "Sending…";
  try {
    const body = { event_id: eventId, action };
    if (reason) body.reason = reason;
    const res = await api("/api/v1/retrain", { method: "POST", body });
    fb.className = "feedback ok";
    fb.textContent = action === "IGNORE" ? `Ignored by ${res.approved_by}.` : `${res.status}: packaging job ${res.retraining_job_id} (approved by ${res.approved_by}).`;
    $("reason").value = "";
    await pollUntilDecided(eventId);
  } catch (err) {
    fb.className = "feedback error";
    if (err.status === 403) fb.textContent = "You are not allowed to decide on this event (you need the approve verb on its DriftMonitor): " + err.message;
    else if (err.status === 409) fb.textContent = "This event was already decided or is no longer in review: " + err.message;
    else if (err.status === 401) { fb.textContent = "Sign in first."; handleError(err); }
    else fb.textContent = err.message;
    const current = state.events.find((e) => e.event_id === eventId);
    const open = !current || current.status === "NEEDS_REVIEW";
    $("approve").disabled = $("ignore").disabled = !(open && err.status !== 409);
  }
}

async function pollUntilDecided(eventId) {
  // The controller moves the event on; the cache follows within moments.
  for (let i = 0; i < 20; i++) {
    await loadEvents(false).catch(() => {});
    const e = state.events.find((x) => x.event_id === eventId);
    if (e && e.status !== "NEEDS_REVIEW") break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const feedback = $("decision-feedback").textContent;
  await showDetails(eventId);
  const fb = $("decision-feedback");
  fb.className = "feedback ok";
  fb.textContent = feedback;
}

// ---- wiring ---------------------------------------------------------------------------------------

function signedOut() { return state.config.auth && !token(); }

async function refresh() {
  banner("");
  if (signedOut()) {
    // Nothing can be read without a token: say so instead of asking the API.
    const text = "A Kubernetes bearer token is needed to see monitors and drift events. " + TOKEN_HELP;
    banner("Sign in with a Kubernetes bearer token (top right) to see monitors and drift events.", "info");
    showMessage($("monitors"), text, "signin-needed");
    showEventsMessage(text, "signin-needed");
    return;
  }
  const [monitors, events] = await Promise.allSettled([loadMonitors(), loadEvents(false)]);
  if (monitors.status === "rejected") showMessage($("monitors"), explain(monitors.reason, "monitors"), "error");
  if (events.status === "rejected") showEventsMessage(explain(events.reason, "drift events"), "error");
  const failed = [monitors, events].find((r) => r.status === "rejected");
  if (failed) handleError(failed.reason, "monitors and drift events");
}

function renderSignin() {
  const signedIn = !!token();
  $("signout-button").hidden = !signedIn;
  $("token").hidden = signedIn;
  $("signin-button").hidden = signedIn;
  $("whoami").textContent = !state.config.auth ? "authentication off" : signedIn ? "signed in" : "";
  $("signin").hidden = !state.config.auth;
}

async function main() {
  // Filters may come from the address: /?namespace=ml&monitor=frames&status=NEEDS_REVIEW
  const params = new URLSearchParams(location.search);
  $("filter-namespace").value = params.get("namespace") || "";
  $("filter-monitor").value = params.get("monitor") || "";
  if (params.get("status")) $("filter-status").value = params.get("status");
  try { state.config = await api("/api/v1/config"); } catch (_) { /* keep defaults */ }
  renderSignin();
  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    $("token").value = "";
    renderSignin();
    refresh();
  });
  $("signout-button").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); renderSignin(); refresh(); });
  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); refresh(); });
  $("refresh").addEventListener("click", refresh);
  $("more").addEventListener("click", () => loadEvents(true).catch(handleError));
  $("details-close").addEventListener("click", () => { $("details").hidden = true; state.selected = null; renderEvents(); });
  $("approve").addEventListener("click", () => decide("TRIGGER_RETRAINING"));
  $("ignore").addEventListener("click", () => decide("IGNORE"));
  await refresh();
  if (location.hash.length > 1) showDetails(decodeURIComponent(location.hash.slice(1)));
}

document.addEventListener("DOMContentLoaded", main);
