// Rhythm dashboard: plain JavaScript, charts drawn as inline SVG (no libraries, no network
// beyond this service's own API).
"use strict";

(function () {
  // Relative to the page (/dashboard), so the dashboard works behind a path prefix too.
  const API = "v1/dashboards";
  const $ = (sel) => document.querySelector(sel);
  const state = { token: null, unit: null, period: null };
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = { on_time: "#2f9e6b", late: "#e0a030", missed: "#d1495b", line: "#3b5bdb" };

  // ---------------------------------------------------------------- token and API
  // The sign-in link carries the token in the fragment (/dashboard#token=…): browsers never send
  // a fragment to a server, so it stays out of access logs and Referer headers. It is read once
  // and removed from the address bar (and so from the history) at once. A ?token= in the query
  // string is never used, only removed: it has already been sent to the server.
  function readToken() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const fromLink = fragment.get("token");
    const url = new URL(location.href);
    if (fromLink !== null || url.searchParams.has("token")) {
      fragment.delete("token");
      url.hash = fragment.toString();
      url.searchParams.delete("token");
      history.replaceState(null, "", url);
    }
    if (fromLink) {
      sessionStorage.setItem("rhythm-token", fromLink);
      return fromLink;
    }
    return sessionStorage.getItem("rhythm-token");
  }

  async function api(path, params) {
    const query = new URLSearchParams(params || {}).toString();
    const response = await fetch(`${API}/${path}${query ? "?" + query : ""}`, {
      headers: { Authorization: `Bearer ${state.token}` },
    });
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail; } catch (e) { /* not JSON */ }
      const error = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
      error.status = response.status;
      throw error;
    }
    return response;
  }
  const json = async (path, params) => (await api(path, params)).json();

  function status(text, isError) {
    const el = $("#status");
    el.textContent = text || "";
    el.classList.toggle("error", Boolean(isError));
  }

  // ---------------------------------------------------------------- formatting
  const pct = (v) => (v === null || v === undefined ? "–" : `${v.toFixed(1)} %`);
  const num = (v, digits) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits ?? 0));
  function periodName(label) {
    const months = ["January", "February", "March", "April", "May", "June", "July", "August",
      "September", "October", "November", "December"];
    let m;
    if ((m = /^(\d{4})-Q([1-4])$/.exec(label))) return `Q${m[2]} ${m[1]} (quarter)`;
    if ((m = /^(\d{4})-(\d{2})$/.exec(label))) return `${months[Number(m[2]) - 1]} ${m[1]}`;
    return `${label} (year)`;
  }
  const shortMonth = (label) => {
    const names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const [y, m] = label.split("-");
    return `${names[Number(m) - 1]} ${y.slice(2)}`;
  };
  function delta(el, value, unit, inverse) {
    el.classList.remove("up", "down");
    if (value === null || value === undefined) { el.textContent = "no comparison"; return; }
    const arrow = value > 0 ? "▲" : value < 0 ? "▼" : "■";
    el.textContent = `${arrow} ${Math.abs(value).toFixed(1)}${unit} vs previous period`;
    if (!el.classList.contains("neutral") && value !== 0) {
      const good = inverse ? value < 0 : value > 0;
      el.classList.add(good ? "up" : "down");
    }
  }
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---------------------------------------------------------------- charts (inline SVG)
  function chartFrame(width, height) {
    return svgEl("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  }

  function stackedBars(target, rows) {
    const W = 640, H = 220, L = 34, B = 24, T = 8;
    const svg = chartFrame(W, H);
    const plotH = H - B - T, step = (W - L) / rows.length, barW = step * 0.68;
    for (const tick of [0, 50, 100]) {
      const y = T + plotH * (1 - tick / 100);
      svg.append(svgEl("line", { x1: L, x2: W, y1: y, y2: y, stroke: "#e3e6ee" }));
      svg.append(svgEl("text", { x: L - 4, y: y + 3, "text-anchor": "end" }, `${tick}%`));
    }
    rows.forEach((row, i) => {
      const x = L + i * step + (step - barW) / 2;
      let y = T + plotH;
      // A hidden month (a small group) says so and carries no number, not even the count owed.
      const title = row.suppressed
        ? `${shortMonth(row.month)}: hidden (a small group)`
        : `${shortMonth(row.month)}: ${pct(row.on_time_pct)} on time, ${pct(row.late_pct)} late, ${pct(row.missed_pct)} missed (${row.obligations} owed)`;
      const group = svgEl("g", { "data-month": row.month });
      group.append(svgEl("title", {}, title));
      for (const key of ["on_time", "late", "missed"]) {
        const value = row[`${key}_pct`];
        if (value === null || value === undefined) continue;
        const h = (plotH * value) / 100;
        y -= h;
        group.append(svgEl("rect", { x, y, width: barW, height: h, fill: COLORS[key], rx: 2 }));
      }
      if (row.on_time_pct === null) {
        group.append(svgEl("text", { x: x + barW / 2, y: T + plotH - 4, "text-anchor": "middle" }, row.suppressed ? "hidden" : "–"));
      }
      svg.append(group);
      svg.append(svgEl("text", { x: x + barW / 2, y: H - 8, "text-anchor": "middle" }, shortMonth(row.month)));
    });
    target.replaceChildren(svg);
  }

  function lineChart(target, rows, key, min, max, reference, format) {
    const W = 320, H = 220, L = 30, B = 24, T = 10, R = 20;
    const svg = chartFrame(W, H);
    const plotH = H - B - T, step = (W - L - R) / Math.max(rows.length - 1, 1);
    const yOf = (v) => T + plotH * (1 - (v - min) / (max - min));
    for (const tick of [min, (min + max) / 2, max]) {
      svg.append(svgEl("line", { x1: L, x2: W - R, y1: yOf(tick), y2: yOf(tick), stroke: "#e3e6ee" }));
      svg.append(svgEl("text", { x: L - 4, y: yOf(tick) + 3, "text-anchor": "end" }, format(tick)));
    }
    if (reference !== null) {
      svg.append(svgEl("line", { x1: L, x2: W - R, y1: yOf(reference), y2: yOf(reference),
        stroke: "#9aa3b5", "stroke-dasharray": "4 3" }));
    }
    const segments = [];
    let current = [];
    rows.forEach((row, i) => {
      const v = row[key];
      const x = L + i * step;
      if (i % 3 === (rows.length - 1) % 3) {
        svg.append(svgEl("text", { x, y: H - 8, "text-anchor": "middle" }, shortMonth(row.month)));
      }
      if (v === null || v === undefined) {
        if (current.length) segments.push(current);
        current = [];
        return;
      }
      current.push([x, yOf(v)]);
      const dot = svgEl("circle", { cx: x, cy: yOf(v), r: 3, fill: COLORS.line, "data-month": row.month });
      dot.append(svgEl("title", {}, `${shortMonth(row.month)}: ${format(v)}`));
      svg.append(dot);
    });
    if (current.length) segments.push(current);
    const d = segments
      .map((seg) => seg.map(([x, y], j) => `${j ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" "))
      .join(" ");
    if (d) svg.prepend(svgEl("path", { d, fill: "none", stroke: COLORS.line, "stroke-width": 2 }));
    target.replaceChildren(svg);
  }

  function bars(target, rows) {
    const W = 320, H = 220, B = 24, T = 16;
    const svg = chartFrame(W, H);
    const maxValue = Math.max(1, ...rows.map((r) => r.goals));
    const step = W / rows.length, barW = step * 0.6, plotH = H - B - T;
    rows.forEach((row, i) => {
      const h = (plotH * row.goals) / maxValue;
      const x = i * step + (step - barW) / 2;
      const rect = svgEl("rect", { x, y: T + plotH - h, width: barW, height: h, fill: COLORS.line, rx: 2 });
      rect.append(svgEl("title", {}, `${row.bucket}: ${row.goals} goals (${pct(row.share_pct)})`));
      svg.append(rect);
      svg.append(svgEl("text", { x: x + barW / 2, y: T + plotH - h - 3, "text-anchor": "middle" }, String(row.goals)));
      svg.append(svgEl("text", { x: x + barW / 2, y: H - 8, "text-anchor": "middle" }, row.bucket));
    });
    target.replaceChildren(svg);
  }

  // ---------------------------------------------------------------- tables
  function table(target, columns, rows, emptyText) {
    if (!rows.length) { target.replaceChildren(el("p", { class: "empty" }, emptyText)); return; }
    const t = el("table");
    const head = el("tr");
    for (const c of columns) head.append(el("th", { class: c.num ? "num" : "" }, c.label));
    const thead = el("thead");
    thead.append(head);
    t.append(thead);
    const body = el("tbody");
    for (const row of rows) {
      const tr = el("tr", row.suppressed ? { class: "suppressed" } : {});
      for (const c of columns) {
        const td = el("td", { class: c.num ? "num" : "" });
        const value = c.render ? c.render(row) : row[c.key];
        if (value instanceof Node) td.append(value); else td.textContent = value ?? "–";
        tr.append(td);
      }
      body.append(tr);
    }
    t.append(body);
    target.replaceChildren(t);
  }

  function shareBar(row) {
    const bar = el("div", { class: "bar", title: `${pct(row.on_time_pct)} on time, ${pct(row.late_pct)} late, ${pct(row.missed_pct)} missed` });
    for (const key of ["on_time", "late", "missed"]) {
      const v = row[`${key}_pct`];
      if (v) { const s = el("span"); s.style.width = `${v}%`; s.style.background = COLORS[key]; bar.append(s); }
    }
    return bar;
  }
  // Suppressed cells show the word, never a number (see the definitions for the rule).
  const hidden = (row, text) => (row.suppressed ? "hidden" : text);
  const people = (row) => (row.suppressed || row.people === null ? "hidden" : String(row.people));

  // ---------------------------------------------------------------- rendering
  function setKpi(key, text) {
    document.querySelectorAll(`[data-kpi="${key}"]`).forEach((node) => { node.textContent = text; });
  }

  function render(data) {
    const { adherence, byUnit, managers, ownership, feedback, goals, attention, pulse } = data;
    const scope = adherence.scope;
    $("#scope-line").replaceChildren(
      "Showing ", el("strong", {}, scope.name), ` · ${periodName(adherence.period.label)} · `,
      adherence.suppressed ? "a small group in this period: figures hidden"
        : scope.people === null ? "headcount hidden" : `${scope.people} people`,
      adherence.previous_period ? ` · compared with ${periodName(adherence.previous_period.label)}` : "",
    );
    const a = adherence.summary;
    setKpi("on_time_pct", pct(a.on_time_pct));
    setKpi("missed_pct", pct(a.missed_pct));
    setKpi("late_pct", pct(a.late_pct));
    delta($('[data-delta="change_on_time_pp"]'), a.change_on_time_pp, " pts", false);
    delta($('[data-delta="change_missed_pp"]'), a.change_missed_pp, " pts", true);
    setKpi("employee_initiated_pct", pct(ownership.summary.employee_initiated_pct));
    delta($('[data-delta="ownership_change_pp"]'), ownership.summary.change_pp, " pts", false);
    setKpi("pulse_average", num(pulse.summary.average, 2));
    delta($('[data-delta="pulse_change"]'), pulse.summary.change, "", false);
    setKpi("at_risk_or_off_track_pct", pct(goals.summary.at_risk_or_off_track_pct));
    setKpi("stale_pct", pct(goals.summary.stale_pct));
    setKpi("goals", num(goals.summary.goals));

    stackedBars($("#chart-adherence"), adherence.rows);
    lineChart($("#chart-pulse"), pulse.rows, "average", 1, 5, 3, (v) => Number(v).toFixed(1));
    lineChart($("#chart-ownership"), ownership.rows, "employee_initiated_pct", 0, 100, null, (v) => `${Math.round(v)}%`);
    bars($("#chart-goals"), goals.rows);

    table($("#table-units"), [
      { label: "Unit", key: "name" },
      { label: "People", num: true, render: people },
      { label: "Owed", num: true, render: (r) => hidden(r, String(r.obligations)) },
      { label: "On time", num: true, render: (r) => hidden(r, pct(r.on_time_pct)) },
      { label: "Late", num: true, render: (r) => hidden(r, pct(r.late_pct)) },
      { label: "Missed", num: true, render: (r) => hidden(r, pct(r.missed_pct)) },
      { label: "", render: (r) => (r.suppressed ? "" : shareBar(r)) },
    ], byUnit.rows, "No units below this one.");
    table($("#table-managers"), [
      { label: "Manager", key: "manager" },
      { label: "Team", num: true, render: (r) => (r.team_size === null ? "hidden" : String(r.team_size)) },
      { label: "Owed", key: "obligations", num: true },
      { label: "Missed", num: true, render: (r) => pct(r.missed_pct) },
      { label: "On time", num: true, render: (r) => pct(r.on_time_pct) },
    ], managers.rows.slice(0, 10), "No manager shown here (small teams are hidden).");
    table($("#table-feedback"), [
      { label: "Unit", key: "name" },
      { label: "People", num: true, render: people },
      { label: "Given", num: true, render: (r) => hidden(r, num(r.given_per_person_per_month, 2)) },
      { label: "Received", num: true, render: (r) => hidden(r, num(r.received_per_person_per_month, 2)) },
      { label: "Praise", num: true, render: (r) => hidden(r, pct(r.praise_pct)) },
    ], feedback.rows, "No units below this one.");
    table($("#table-goals"), [
      { label: "Goal", render: (r) => r.title || r.goal_id },
      { label: "Owner", key: "owner" },
      { label: "Unit", key: "org_unit" },
      { label: "Status", render: (r) => {
        const span = el("span", { class: `pill ${r.stale && r.status === "on_track" ? "stale" : r.status}` },
          r.stale ? `${r.status.replace("_", " ")} · stale` : r.status.replace("_", " "));
        return span;
      } },
      { label: "Progress", num: true, render: (r) => pct(r.progress_pct) },
      { label: "Confidence", num: true, render: (r) => pct(r.confidence_pct) },
    ], attention.rows, "No goal at risk or stale. 🎉");

    const dl = $("#definitions");
    dl.replaceChildren();
    for (const report of [adherence, byUnit, managers, ownership, feedback, goals, attention, pulse]) {
      dl.append(el("dt", {}, report.metric.replace(/-/g, " ")), el("dd", {}, report.definition));
      document.querySelectorAll(`[data-metric="${report.metric}"]`).forEach((n) => { n.title = report.definition; });
    }
  }

  async function load() {
    const params = { unit: state.unit, period: state.period };
    const url = new URL(location.href);
    url.searchParams.set("unit", state.unit);
    url.searchParams.set("period", state.period);
    history.replaceState(null, "", url);
    status("Loading…");
    document.body.dataset.loaded = "";
    try {
      const [adherence, byUnit, managers, ownership, feedback, goals, attention, pulse] = await Promise.all([
        json("cadence-adherence", params), json("cadence-adherence/by-unit", params),
        json("manager-adherence", params), json("ownership", params), json("feedback", params),
        json("goals", params), json("goals/attention", params), json("workload-pulse", params),
      ]);
      render({ adherence, byUnit, managers, ownership, feedback, goals, attention, pulse });
      $("#dashboard").hidden = false;
      status("");
      document.body.dataset.loaded = `${state.unit}|${state.period}`;
    } catch (error) {
      status(`Could not load the dashboard: ${error.message}`, true);
    }
  }

  async function downloadCsv(event) {
    event.preventDefault();
    const path = event.currentTarget.dataset.csv;
    const response = await api(`${path}/export.csv`, { unit: state.unit, period: state.period });
    const blob = await response.blob();
    const link = el("a", { href: URL.createObjectURL(blob), download: `${path.replace("/", "-")}-${state.period}.csv` });
    link.click();
    URL.revokeObjectURL(link.href);
  }

  async function start() {
    let units;
    try {
      units = await json("units");
    } catch (error) {
      if (error.status === 401) {
        sessionStorage.removeItem("rhythm-token");
        $("#login").hidden = false;
        status("That token was not accepted; paste a valid one.", true);
      } else {
        status(`You cannot see dashboards: ${error.message}`, true);
      }
      return;
    }
    const params = new URLSearchParams(location.search);
    const unitSelect = $("#unit"), periodSelect = $("#period");
    unitSelect.replaceChildren(...units.rows.map((u) => {
      const label = `${"\u00a0\u00a0\u00a0".repeat(u.depth)}${u.name}${u.people ? ` (${u.people})` : ""}`;
      return el("option", { value: u.org_unit_id }, label);
    }));
    periodSelect.replaceChildren(...units.periods.map((p) => el("option", { value: p }, periodName(p))));
    const wantedUnit = params.get("unit");
    state.unit = units.rows.some((u) => u.org_unit_id === wantedUnit) ? wantedUnit : units.rows[0].org_unit_id;
    const wantedPeriod = params.get("period");
    state.period = units.periods.includes(wantedPeriod) ? wantedPeriod : units.default_period;
    unitSelect.value = state.unit;
    periodSelect.value = state.period;
    $("#pickers").hidden = false;
    unitSelect.addEventListener("change", () => { state.unit = unitSelect.value; load(); });
    periodSelect.addEventListener("change", () => { state.period = periodSelect.value; load(); });
    document.querySelectorAll("a.csv").forEach((a) => a.addEventListener("click", downloadCsv));
    await load();
  }

  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("#token").value.trim();
    if (!state.token) return;
    sessionStorage.setItem("rhythm-token", state.token);
    $("#login").hidden = true;
    start();
  });

  state.token = readToken();
  if (state.token) start(); else $("#login").hidden = false;
})();
