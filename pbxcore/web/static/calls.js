"use strict";
// Call detail: CDR search by number and period, one call's trace and its recordings.
const el = PBX.el;

async function open(callId) {
  const r = await fetch(`/api/cdr/${encodeURIComponent(callId)}`, {credentials: "same-origin"});
  if (r.status !== 200) return;
  const d = await r.json();
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-title").textContent = `${d.cdr.caller} → ${d.cdr.called} (${d.cdr.call_id})`;
  PBX.replace(document.getElementById("recordings"), ...d.cdr.recordings.map((_, i) =>
    el("div", {}, `recording ${i + 1} `, el("audio", {controls: "", preload: "none",
      src: `/api/recording/${encodeURIComponent(callId)}/${i + 1}`}))));
  document.getElementById("trace").textContent = d.trace.map(
    t => `${t.time} ${t.kind} ${JSON.stringify(t.data)}`).join("\n");
}

async function search(ev) {
  if (ev) ev.preventDefault();
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(document.getElementById("search"))) if (v) params.set(k, v);
  const r = await fetch(`/api/cdrs?${params}`, {credentials: "same-origin"});
  const err = document.getElementById("error");
  if (r.status !== 200) { err.textContent = await r.text(); err.hidden = false; return; }
  err.hidden = true;
  const rows = (await r.json()).cdrs.map(c => el("tr", {},
    el("td", {}, c.start), el("td", {}, c.caller), el("td", {}, c.caller_name), el("td", {}, c.called),
    el("td", {}, c.route || ""), el("td", {}, c.disposition || "open"),
    el("td", {class: "num"}, c.duration === null ? "" : PBX.clock(c.duration)),
    el("td", {}, el("button", {onclick: () => open(c.call_id)}, "Open"))));
  PBX.replace(document.querySelector("#cdrs tbody"), ...rows);
}

PBX.whoami().then(me => {
  if (!me) return;
  document.getElementById("search").addEventListener("submit", search);
  search();
});
