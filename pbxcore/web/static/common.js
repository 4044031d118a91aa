"use strict";
// Shared helpers. Every piece of text from the switch (caller names are hostile text) goes
// into the page as a text node: el() never parses HTML.
const PBX = {};
PBX.el = function (tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
};
PBX.clock = function (seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(r).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
};
PBX.pct = function (x) { return x === null || x === undefined ? "" : `${(x * 100).toFixed(1)}%`; };
PBX.me = null;
PBX.whoami = async function () {
  const r = await fetch("/api/me", {credentials: "same-origin"});
  if (r.status === 401) { location.href = "/login"; return null; }
  PBX.me = await r.json();
  const who = document.getElementById("who");
  if (who) who.textContent = `${PBX.me.name} (${PBX.me.role})`;
  for (const n of document.querySelectorAll(".supervisor-only")) n.hidden = PBX.me.role !== "supervisor";
  return PBX.me;
};
PBX.post = async function (url, body) {
  const r = await fetch(url, {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": PBX.me ? PBX.me.csrf : ""},
    body: JSON.stringify(body)});
  return {status: r.status, body: await r.text()};
};
PBX.replace = function (node, ...children) { node.replaceChildren(...children); };
