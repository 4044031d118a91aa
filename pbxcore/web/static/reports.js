"use strict";
// The reports page: the JSON `pbx report --json` prints (same code on the server), drawn as a
// table and bar charts in SVG. Keys (numbers callers dialled, agent names) are text nodes.
const el = PBX.el;
const SVG = "http://www.w3.org/2000/svg";
const COLUMNS = [
  ["calls", "calls", "n"], ["offered", "offered", "n"], ["answered", "answ", "n"],
  ["abandoned", "aband", "n"], ["short_abandoned", "short", "n"], ["asa", "ASA", "s"],
  ["sl", "SL", "p"], ["sl2", "SL2", "p"], ["aht", "AHT", "s"], ["abandon_rate", "aband%", "p"],
  ["talk", "talk", "t"], ["wrapup", "wrap-up", "t"], ["hold", "hold", "t"], ["max_wait", "max wait", "s"],
  ["logged_in", "logged in", "t"], ["paused", "paused", "t"], ["occupancy", "occ.", "p"]];

function cell(kind, v) {
  if (v === null || v === undefined) return "";
  if (kind === "p") return PBX.pct(v);
  if (kind === "s") return Number(v).toFixed(1);
  if (kind === "t") return PBX.clock(v);
  return String(v);
}

function svg(tag, attrs) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  return n;
}

function barChart(title, rows, value, fmt) {
  const w = 480, h = 200, pad = 28;
  const chart = svg("svg", {viewBox: `0 0 ${w} ${h}`, class: "chart", role: "img"});
  const label = svg("title", {}); label.textContent = title; chart.append(label);
  const values = rows.map(value).map(v => (v === null || v === undefined ? 0 : v));
  const max = Math.max(1e-9, ...values);
  const bw = (w - 2 * pad) / Math.max(1, rows.length);
  rows.forEach((r, i) => {
    const bh = (h - 2 * pad) * values[i] / max;
    const bar = svg("rect", {x: pad + i * bw + 1, y: h - pad - bh, width: Math.max(1, bw - 2), height: bh});
    const tip = svg("title", {}); tip.textContent = `${r.key}: ${fmt(values[i])}`; bar.append(tip);
    chart.append(bar);
    if (rows.length <= 24) {
      const t = svg("text", {x: pad + i * bw + bw / 2, y: h - pad + 12, "text-anchor": "middle"});
      t.textContent = String(r.key).slice(-5); chart.append(t);
    }
  });
  const top = svg("text", {x: 4, y: 12}); top.textContent = `${title} (max ${fmt(max)})`; chart.append(top);
  return el("figure", {}, chart);
}

function query() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(document.getElementById("filters"))) if (v) params.set(k, v);
  return params.toString();
}

async function run(ev) {
  if (ev) ev.preventDefault();
  const q = query();
  document.getElementById("csv").href = `/api/report.csv?${q}`;
  document.getElementById("xlsx").href = `/api/report.xlsx?${q}`;
  const r = await fetch(`/api/report?${q}`, {credentials: "same-origin"});
  const err = document.getElementById("error");
  if (r.status !== 200) { err.textContent = await r.text(); err.hidden = false; return; }
  err.hidden = true;
  const rep = await r.json();
  const sl = rep.sl_definition === "perf2" ? "sl2" : "sl";
  document.getElementById("title").textContent = `${rep.from} to ${rep.to}, by ${rep.by}`;
  const cols = COLUMNS.filter(c => rep.by === "agent" || !["logged_in", "paused", "occupancy"].includes(c[0]));
  PBX.replace(document.querySelector("#report thead"), el("tr", {}, el("th", {}, rep.by), ...cols.map(c => el("th", {class: "num"}, c[1]))));
  const row = r => el("tr", {}, el("td", {}, r.key), ...cols.map(c => el("td", {class: "num"}, cell(c[2], r[c[0]]))));
  PBX.replace(document.querySelector("#report tbody"), ...rep.rows.map(row));
  PBX.replace(document.querySelector("#report tfoot"), row(rep.totals));
  PBX.replace(document.getElementById("charts"),
    barChart("offered", rep.rows, r => r.offered, String),
    barChart(sl === "sl" ? "service level" : "service level (SL2)", rep.rows, r => r[sl], PBX.pct),
    barChart("abandon rate", rep.rows, r => r.abandon_rate, PBX.pct),
    barChart("ASA (s)", rep.rows, r => r.asa, v => Number(v).toFixed(1)));
  PBX.replace(document.querySelector("#pauses tbody"), ...rep.pauses.map(
    p => el("tr", {}, el("td", {}, p.agent), el("td", {}, p.reason || "(none)"), el("td", {class: "num"}, PBX.clock(p.seconds)))));
  PBX.replace(document.getElementById("definitions"), ...Object.entries(rep.definitions).flatMap(
    ([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

PBX.whoami().then(me => {
  if (!me) return;
  document.getElementById("filters").addEventListener("submit", run);
  run();
});
