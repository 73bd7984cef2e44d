// shoal web UI: plain JS, no build step, no external URLs. Live list from
// /api/events (server-sent events); actions through the JSON API with the
// session token.
"use strict";
let token = "";
let torrents = [];
let selected = null; // hash of the torrent in the detail panel
let tab = "files";
let detailState = ""; // state shown in the detail panel
const speeds = []; // [down, up] per second, last 120

const $ = (s) => document.querySelector(s);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick" || k === "onchange") e[k] = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function bytes(n) {
  const u = ["B", "kB", "MB", "GB", "TB"]; let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function rate(n) { return n > 0 ? bytes(n) + "/s" : "–"; }
function eta(s) {
  if (s < 0) return "–";
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
}
async function api(method, path, body) {
  const opt = { method, headers: { "X-Shoal-Token": token } };
  if (body instanceof FormData) opt.body = body;
  else if (body !== undefined) { opt.body = JSON.stringify(body); opt.headers["Content-Type"] = "application/json"; }
  const r = await fetch(path, opt);
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}

// Rows are kept per torrent and updated in place: replacing them every
// second would lose a click whose press and release straddle an update,
// and the keyboard focus.
const rows = new Map(); // hash -> {tr, cells, running}
function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
function makeRow(t) {
  const r = { tr: el("tr", { "data-hash": t.hash }), running: null };
  r.name = el("span", { class: "name", onclick: () => select(t.hash) });
  r.err = el("div", { class: "help" });
  r.fill = el("span"); r.pct = el("em");
  r.bar = el("div", { class: "bar" }, r.fill, r.pct);
  r.down = el("td", { class: "n" }); r.up = el("td", { class: "n" }); r.eta = el("td", { class: "n" });
  r.state = el("td", { class: "state" });
  r.toggle = el("span");
  r.acts = el("td", { class: "actions" }, r.toggle,
    el("button", { "data-act": "remove", onclick: () => remove(t.hash, false) }, "Remove"),
    el("button", { "data-act": "remove-data", onclick: () => remove(t.hash, true) }, "Delete data"));
  r.tr.append(el("td", {}, r.name, r.err), el("td", {}, r.bar), r.down, r.up, r.eta, r.state, r.acts);
  return r;
}
function setText(e, text) { if (e.textContent !== text) e.textContent = text; }
function updateRow(r, t) {
  const pct = (t.state === "checking" && t.verify > 0 ? t.verify : t.progress) * 100;
  r.tr.dataset.state = t.state; r.tr.dataset.progress = t.progress;
  r.tr.className = t.hash === selected ? "sel" : "";
  setText(r.name, t.name); setText(r.err, t.error || ""); r.err.hidden = !t.error;
  r.bar.className = "bar" + (t.progress < 1 ? " dl" : "");
  r.fill.style.width = pct + "%"; setText(r.pct, pct.toFixed(1) + "%");
  setText(r.down, rate(t.down_rate)); setText(r.up, rate(t.up_rate));
  setText(r.eta, t.progress >= 1 ? "done" : eta(t.eta)); setText(r.state, t.state);
  const running = !["stopped", "error"].includes(t.state);
  if (running !== r.running) {
    r.running = running;
    r.toggle.replaceChildren(running
      ? el("button", { "data-act": "stop", onclick: () => act(t.hash, "stop") }, "Pause")
      : el("button", { "data-act": "start", onclick: () => act(t.hash, "start") }, "Resume"));
  }
}
function renderList() {
  const tb = $("#list tbody");
  const seen = new Set();
  torrents.forEach((t, i) => {
    let r = rows.get(t.hash);
    if (!r) { r = makeRow(t); rows.set(t.hash, r); }
    updateRow(r, t);
    if (tb.children[i] !== r.tr) tb.insertBefore(r.tr, tb.children[i] || null);
    seen.add(t.hash);
  });
  for (const [h, r] of rows) if (!seen.has(h)) { r.tr.remove(); rows.delete(h); }
  $("#empty").hidden = torrents.length > 0;
}

function drawSpeed() {
  const c = $("#speed"); const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 600, h = 60;
  c.width = w * dpr; c.height = h * dpr;
  const g = c.getContext("2d"); g.setTransform(dpr, 0, 0, dpr, 0, 0); g.clearRect(0, 0, w, h);
  const max = Math.max(1, ...speeds.flat());
  const line = (i, color) => {
    g.strokeStyle = color; g.beginPath();
    speeds.forEach((s, x) => { const px = w - (speeds.length - x) * (w / 120); const py = h - 1 - (s[i] / max) * (h - 18); x ? g.lineTo(px, py) : g.moveTo(px, py); });
    g.stroke();
  };
  line(0, "#37c"); line(1, "#2a7");
  g.fillStyle = "#555"; g.font = "11px system-ui, sans-serif";
  g.fillText("max " + rate(max) + "  (blue down, green up)", 4, 12);
}

async function act(hash, action) {
  try { await api("POST", "/api/torrents/" + hash + "/" + action); } catch (e) { msg(e.message); }
}
async function remove(hash, data) {
  if (data && !confirm("Delete the downloaded files too?")) return;
  try { await api("DELETE", "/api/torrents/" + hash + (data ? "?data=true" : "")); if (selected === hash) closeDetail(); } catch (e) { msg(e.message); }
}
window.addEventListener("resize", drawSpeed);
function msg(text, ok) { const m = $("#add-msg"); m.textContent = text; m.className = ok ? "ok" : ""; }

$("#add-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const f = $("#add-file").files[0];
  const url = $("#add-url").value.trim();
  const fd = new FormData();
  if (f) fd.append("torrent", f);
  if (url) fd.append("url", url);
  if ($("#add-paused").checked) fd.append("paused", "true");
  if (!f && !url) { msg("choose a .torrent file or paste a magnet link"); return; }
  try {
    const r = await api("POST", "/api/torrents", fd);
    msg("added " + r.hash, true);
    $("#add-url").value = ""; $("#add-file").value = "";
  } catch (e) { msg(e.message); }
};

function select(hash) { selected = hash; $("#detail").hidden = false; renderList(); refreshDetail(); }
function closeDetail() { selected = null; $("#detail").hidden = true; const p = $("#player"); p.pause(); p.hidden = true; p.removeAttribute("src"); renderList(); }
$("#d-close").onclick = closeDetail;
for (const b of document.querySelectorAll(".tab")) b.onclick = () => { tab = b.dataset.tab; refreshDetail(); };

async function refreshDetail() {
  if (!selected) return;
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("on", b.dataset.tab === tab);
  for (const p of document.querySelectorAll(".pane")) p.hidden = p.id !== "tab-" + tab;
  let d;
  try { d = await api("GET", "/api/torrents/" + selected); } catch (e) { closeDetail(); return; }
  detailState = d.state;
  $("#d-name").textContent = d.name + " — " + d.state + ", " + bytes(d.size_when_done - d.left) + " of " + bytes(d.size_when_done) +
    (d.size_when_done < d.size ? " wanted (" + bytes(d.size) + " in all)" : "") + ", ratio " + d.ratio.toFixed(2);
  if (tab === "files") renderFiles(d);
  if (tab === "peers") renderPeers(d);
  if (tab === "trackers") renderTrackers(d);
  if (tab === "pieces") renderPieces(d);
  if (tab === "swarm") renderSwarm(d);
}

// renderTrackers shows the announce URLs and what the trackers answered
// (the engine keeps one set of figures for all of a torrent's trackers).
function renderTrackers(d) {
  if (document.activeElement && document.activeElement.dataset && document.activeElement.dataset.limit) return; // being edited
  const t = d.tracker || {};
  const n = (x) => (x >= 0 ? String(x) : "?");
  const last = t.last_at ? new Date(t.last_at).toLocaleTimeString() : "never";
  const result = !t.last_at ? "–" : t.last_error ? "failed: " + t.last_error : "ok, " + t.peers + " peers";
  const figures = el("table", { id: "tracker-figures" },
    el("tr", {}, el("th", {}, "Announces"), el("th", {}, "Failures"), el("th", {}, "Last"), el("th", {}, "Result"), el("th", {}, "Seeders"), el("th", {}, "Leechers"), el("th", {}, "Answered by")),
    el("tr", {}, el("td", { class: "n" }, String(t.announces || 0)), el("td", { class: "n" }, String(t.failures || 0)), el("td", {}, last), el("td", {}, result),
      el("td", { class: "n" }, t.announces ? n(t.seeders) : "?"), el("td", { class: "n" }, t.announces ? n(t.leechers) : "?"), el("td", {}, t.last_url || "")));
  const limits = el("p", {}, "Limits (kB/s, 0 = none): down ",
    limitInput(d, "down_limit"), " up ", limitInput(d, "up_limit"));
  $("#tab-trackers").replaceChildren(el("ul", {}, ...d.trackers.map((u) => el("li", {}, u))), figures, limits, el("p", { class: "help" }, d.magnet));
}
function limitInput(d, key) {
  const i = el("input", { type: "number", min: "0", step: "1", size: "6", "data-limit": key,
    onchange: (e) => api("PATCH", "/api/torrents/" + d.hash, { [key]: Math.max(0, Math.round(+e.target.value * 1000)) }).catch((x) => msg(x.message)) });
  i.value = String(Math.round(d[key] / 1000));
  return i;
}

function renderFiles(d) {
  const rows = (d.files || []).map((f) => {
    const sel = el("select", { onchange: (e) => api("PATCH", "/api/torrents/" + d.hash, { files: [{ index: f.index, priority: +e.target.value }] }).catch((x) => msg(x.message)) },
      ...[[1, "high"], [0, "normal"], [-1, "low"]].map(([v, n]) => { const o = el("option", { value: v }, n); if (v === f.priority) o.selected = true; return o; }));
    const want = el("input", { type: "checkbox", onchange: (e) => api("PATCH", "/api/torrents/" + d.hash, { files: [{ index: f.index, wanted: e.target.checked }] }).catch((x) => msg(x.message)) });
    want.checked = f.wanted;
    const play = f.media ? el("button", { "data-act": "play", onclick: () => play(d.hash, f.index) }, "▶ Play") : "";
    return el("tr", {}, el("td", {}, want), el("td", {}, f.path), el("td", { class: "n" }, bytes(f.have) + " / " + bytes(f.length)), el("td", {}, sel), el("td", {}, play));
  });
  $("#tab-files").replaceChildren(el("table", {}, el("tr", {}, el("th", {}, "Get"), el("th", {}, "File"), el("th", { class: "n" }, "Done"), el("th", {}, "Priority"), el("th", {})), ...rows));
}
function play(hash, idx) { const p = $("#player"); p.hidden = false; p.src = "/stream/" + hash + "/" + idx; p.play().catch(() => {}); }

function flags(p) {
  let s = "";
  if (!p.peer_choking && p.am_interested) s += "D"; else if (p.am_interested) s += "d";
  if (!p.am_choking && p.peer_interested) s += "U"; else if (p.peer_interested) s += "u";
  if (p.optimistic) s += "O"; if (p.snubbed) s += "S"; if (!p.outbound) s += "I"; if (p.seed) s += "*";
  return s;
}
function renderPeers(d) {
  const rows = d.peer_list.map((p) => el("tr", {}, el("td", {}, p.addr), el("td", {}, p.client || "?"), el("td", {}, flags(p)),
    el("td", { class: "n" }, rate(p.down_rate)), el("td", { class: "n" }, rate(p.up_rate)), el("td", { class: "n" }, d.num_pieces ? (100 * p.pieces / d.num_pieces).toFixed(0) + "%" : "")));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6, class: "help" }, d.state === "stopped" ? "Paused: no connections." : "No peers connected yet.")));
  $("#tab-peers").replaceChildren(el("table", {}, el("tr", {}, el("th", {}, "Address"), el("th", {}, "Client"), el("th", {}, "Flags"), el("th", { class: "n" }, "Down"), el("th", { class: "n" }, "Up"), el("th", { class: "n" }, "Has")), ...rows),
    el("p", { class: "help" }, "Flags: D downloading from, U uploading to (lower case: interested but choked), O optimistic unchoke, S snubbed, I incoming, * seed."));
}
async function renderPieces(d) {
  const r = await api("GET", "/api/torrents/" + d.hash + "/pieces");
  const s = r.pieces || ""; const c = $("#piecemap"); const n = s.length || 1;
  const cols = Math.min(n, 600); const rows = Math.ceil(n / cols);
  c.width = cols; c.height = rows; const g = c.getContext("2d");
  g.fillStyle = "#e4e6ea"; g.fillRect(0, 0, cols, rows); g.fillStyle = "#4a8";
  for (let i = 0; i < s.length; i++) if (s[i] === "1") g.fillRect(i % cols, Math.floor(i / cols), 1, 1);
  if (!s.length) { g.fillStyle = "#999"; g.fillRect(0, 0, cols, rows); }
}
async function renderSwarm(d) {
  const r = await api("GET", "/api/torrents/" + d.hash + "/swarm");
  const rounds = r.rounds || [];
  const peers = new Map();
  for (const rd of rounds) for (const p of rd.peers) peers.set(p.addr, p);
  for (const p of r.peers || []) peers.set(p.addr, p);
  const addrs = [...peers.keys()].sort();
  const cw = 10, ch = 18, left = 150, bw = 120;
  const W = left + Math.max(1, rounds.length) * cw + bw + 20, H = 20 + addrs.length * ch + 10;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("id", "swarm-svg");
  const add = (tag, a, text) => { const e = document.createElementNS(ns, tag); for (const k in a) e.setAttribute(k, a[k]); if (text !== undefined) e.textContent = text; svg.append(e); return e; };
  add("text", { x: 4, y: 13, "font-size": 11 }, plural(rounds.length, "round") + ", " + plural(addrs.length, "peer") + (addrs.length ? "" : " (peers appear while they are connected)"));
  let maxBal = 1;
  for (const a of addrs) { const p = peers.get(a); maxBal = Math.max(maxBal, Math.abs(p.downloaded - p.uploaded)); }
  addrs.forEach((a, row) => {
    const y = 20 + row * ch; const p = peers.get(a);
    add("text", { x: 4, y: y + 13, "font-size": 11 }, a + " " + (p.client || "").slice(0, 10));
    rounds.forEach((rd, col) => {
      const q = rd.peers.find((x) => x.addr === a);
      const x = left + col * cw;
      if (!q) { add("rect", { x, y, width: cw - 1, height: ch - 2, fill: "#eee" }); return; }
      add("rect", { x, y, width: cw - 1, height: (ch - 2) / 2, fill: q.am_choking ? "#ddd" : (q.optimistic ? "#c80" : "#2a7"), class: "cell-up" });
      add("rect", { x, y: y + (ch - 2) / 2, width: cw - 1, height: (ch - 2) / 2, fill: q.peer_choking ? "#ddd" : "#37c", class: "cell-down" });
    });
    const bal = p.downloaded - p.uploaded; const mid = left + Math.max(1, rounds.length) * cw + 10 + bw / 2;
    const w = (Math.abs(bal) / maxBal) * (bw / 2);
    add("rect", { x: bal >= 0 ? mid : mid - w, y: y + 3, width: Math.max(1, w), height: ch - 8, fill: bal >= 0 ? "#37c" : "#2a7" });
    add("title", {}, a + ": got " + bytes(p.downloaded) + ", gave " + bytes(p.uploaded));
  });
  $("#swarm").replaceChildren(svg);
}

async function boot() {
  const s = await (await fetch("/api/session")).json();
  token = s.token;
  let last = 0;
  const update = (m) => {
    torrents = m.torrents;
    const t = m.totals;
    $("#totals").textContent = plural(t.Torrents, "torrent") + " · ↓ " + rate(t.DownRate) + " · ↑ " + rate(t.UpRate) + " · " + plural(t.Peers, "peer");
    renderList();
    // The detail panel follows a change of state at once (pause, finish).
    const cur = torrents.find((x) => x.hash === selected);
    if (cur && cur.state !== detailState) refreshDetail();
    const now = Date.now();
    if (now - last >= 900) { speeds.push([t.DownRate, t.UpRate]); if (speeds.length > 120) speeds.shift(); drawSpeed(); last = now; if (selected) refreshDetail(); }
  };
  // ?poll=1 polls instead of holding an event stream (for proxies that
  // buffer server-sent events, and for headless snapshots).
  if (new URLSearchParams(location.search).has("poll")) {
    const tick = async () => {
      const list = await api("GET", "/api/torrents");
      const tot = { Torrents: list.length, DownRate: 0, UpRate: 0, Peers: 0 };
      for (const x of list) { tot.DownRate += x.down_rate; tot.UpRate += x.up_rate; tot.Peers += x.peers; }
      update({ torrents: list, totals: tot });
    };
    await tick(); setInterval(tick, 1000);
    return;
  }
  const es = new EventSource("/api/events");
  es.addEventListener("torrents", (ev) => update(JSON.parse(ev.data)));
}
boot();
