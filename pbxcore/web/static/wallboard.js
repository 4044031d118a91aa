"use strict";
// The wallboard: one Server-Sent Events stream (/api/live) carries the whole picture at least
// once a second; the page redraws from it. No HTML is ever built from strings.
const el = PBX.el;

function queueCard(q) {
  const agents = Object.entries(q.agents || {}).map(([state, n]) => el("li", {}, `${state} ${n}`));
  const sl = q.sl_today === null || q.sl_today === undefined ? "—" : `${Math.round(q.sl_today)}%`;
  const slBad = q.sl_today !== null && q.sl_today !== undefined && q.sl_today < q.sl_target;
  return el("article", {class: "queue", dataset: {queue: q.name}},
    el("h2", {class: "qname"}, q.name, q.alert ? el("span", {class: "badge red"}, "ALERT") : null),
    el("div", {class: "figures"},
      el("div", {class: `figure ${q.waiting_level}`}, el("b", {class: "waiting"}, q.waiting), el("span", {}, "waiting")),
      el("div", {class: `figure ${q.wait_level}`}, el("b", {class: "longest"}, PBX.clock(q.longest_wait)), el("span", {}, "longest wait")),
      el("div", {class: `figure ${slBad ? "amber" : "ok"}`}, el("b", {class: "sl"}, sl),
         el("span", {}, `SL today (target ${q.sl_target}% in ${q.service_level}s)`)),
      el("div", {class: "figure"}, el("b", {class: "answered"}, q.answered_today), el("span", {}, "answered")),
      el("div", {class: "figure"}, el("b", {class: "abandoned"}, q.abandoned_today), el("span", {}, "abandoned"))),
    el("ul", {class: "agent-states"}, ...agents));
}

async function agentAction(ext, op) {
  const reason = op === "pause" ? (prompt("Pause reason", "supervisor") || "supervisor") : null;
  const r = await PBX.post("/api/agent", {op: op, extension: ext, reason: reason});
  if (r.status !== 200) alert(`refused: ${r.body}`);
}

async function hangupCall(callId) {
  if (!confirm("Hang up this call?")) return;
  const r = await PBX.post("/api/hangup", {call_id: callId});
  if (r.status !== 200) alert(`refused: ${r.body}`);
}

function agentRow(a) {
  const sup = PBX.me && PBX.me.role === "supervisor";
  const paused = a.state === "paused";
  const action = sup && a.logged_in.length ? el("button", {onclick: () => agentAction(a.extension, paused ? "unpause" : "pause")}, paused ? "Unpause" : "Pause") : null;
  return el("tr", {class: `state-${a.state}`, dataset: {agent: a.extension}},
    el("td", {}, a.extension), el("td", {}, a.name), el("td", {class: "state"}, a.state),
    el("td", {}, PBX.clock(a.state_seconds)), el("td", {}, a.reason || ""),
    el("td", {}, a.calls_today), el("td", {}, (a.queues || []).join(", ")),
    sup ? el("td", {}, action) : null);
}

function callRow(c) {
  const sup = PBX.me && PBX.me.role === "supervisor";
  return el("tr", {dataset: {call: c.call_id}},
    el("td", {}, c.caller), el("td", {class: "caller-name"}, c.caller_name || ""), el("td", {}, c.called),
    el("td", {}, c.state, c.detail ? ` (${c.detail})` : ""), el("td", {}, PBX.clock(c.duration)),
    sup ? el("td", {}, el("button", {onclick: () => hangupCall(c.call_id)}, "Hang up")) : null);
}

function draw(top) {
  const err = document.getElementById("feed-error");
  if (top.error) { err.textContent = `switch: ${top.error}`; err.hidden = false; return; }
  err.hidden = true;
  const cap = top.capacity;
  const lines = document.getElementById("lines");
  lines.textContent = cap ? `lines ${top.lines_in_use}/${cap}` : `lines ${top.lines_in_use}`;
  lines.className = "lines " + (cap && top.lines_in_use >= cap ? "red" : cap && top.lines_in_use >= 0.8 * cap ? "amber" : "ok");
  document.getElementById("updated").textContent = `updated ${top.time}`;
  PBX.replace(document.getElementById("queues"), ...(top.queues || []).map(queueCard));
  if (!(top.queues || []).length) document.getElementById("queues").append(el("p", {class: "muted"}, "no queues configured"));
  PBX.replace(document.querySelector("#agents tbody"), ...(top.agents || []).map(agentRow));
  PBX.replace(document.querySelector("#calls tbody"), ...(top.calls || []).map(callRow));
  PBX.replace(document.getElementById("trunks"), ...(top.trunks || []).map(
    t => el("li", {class: `trunk ${t.status === "registered" ? "ok" : t.status === "failed" ? "red" : "amber"}`}, `${t.name}: ${t.status}`)));
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}

PBX.whoami().then(me => {
  if (!me) return;
  const source = new EventSource("/api/live");
  source.addEventListener("top", ev => draw(JSON.parse(ev.data)));
  source.onerror = () => {
    const err = document.getElementById("feed-error");
    err.textContent = "connection to the switch lost; retrying"; err.hidden = false;
  };
});
