// kedge console: hash-routed pages over the console's JSON API. No dependencies, no build step.
// Every piece of data goes into the page as text (textContent), never as HTML.
"use strict";

const TOKEN = "kedge-console-token";
const main = document.getElementById("main");
let leave = () => {};  // ends the current page's live stream

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN) || ""}` };
  if (options.body) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) throw new Unauthorized();
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function showLogin(message = "") {
  leave();
  main.replaceChildren();
  document.getElementById("login").hidden = false;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  document.getElementById("login-error").textContent = message;
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN, document.getElementById("token").value.trim());
  document.getElementById("token").value = "";
  start();
});

document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN);
  showLogin();
});

function badges(conditions) {
  return conditions.map((c) => el("span", {
    class: c.status === "True" ? "badge" : c.status === "False" ? "badge bad" : "badge unknown",
    title: c.message || c.reason || "",
    "data-condition": c.type,
  }, c.status === "True" ? c.type : `${c.type}: ${c.reason || c.status}`));
}

function stateBadge(state) {
  const cls = state === "online" || state === "ok" ? "badge" : state === "unknown" ? "badge unknown" : "badge bad";
  return el("span", { class: cls, "data-state": state }, state);
}

async function devicesPage() {
  const { items } = await api("/api/devices");
  main.replaceChildren(el("h1", {}, "Devices"), el("table", { id: "devices" },
    el("tr", {}, ["Device", "Namespace", "Model", "Node", "Protocol", "State", "Conditions"].map((h) => el("th", {}, h))),
    items.map((d) => el("tr", { "data-device": `${d.namespace}/${d.name}` },
      el("td", {}, el("a", { href: `#/device/${d.namespace}/${d.name}` }, d.name)),
      el("td", {}, d.namespace), el("td", {}, d.model), el("td", {}, d.node), el("td", {}, d.protocol),
      el("td", {}, stateBadge(d.state)), el("td", {}, badges(d.conditions))))));
  performance.mark("devices-listed");  // user timing: what page-load measurements read
}

async function nodesPage() {
  const { items } = await api("/api/nodes");
  main.replaceChildren(el("h1", {}, "Nodes"), el("table", { id: "nodes" },
    el("tr", {}, ["Node", "Ready", "Last heartbeat", "Pods"].map((h) => el("th", {}, h))),
    items.map((n) => el("tr", { "data-node": n.name },
      el("td", {}, n.name, n.edge ? el("span", { class: "muted" }, " (edge)") : ""),
      el("td", {}, el("span", { class: n.ready === "True" ? "badge" : "badge bad", title: n.reason }, n.ready)),
      el("td", {}, n.lastHeartbeat),
      el("td", {}, n.pods.map((p) => el("div", {}, `${p.namespace}/${p.name} `, el("span", { class: "muted" }, p.phase))))))));
}

// ---- the device page ---------------------------------------------------------------------

function propertyRow(prop, device, admin) {
  const cells = [
    el("td", {}, prop.name, prop.unit ? el("span", { class: "muted" }, ` ${prop.unit}`) : ""),
    el("td", { class: "value", "data-value": prop.name }, prop.reported.value ?? "—"),
    el("td", { class: "muted" }, prop.reported.timestamp ? new Date(Number(prop.reported.timestamp)).toLocaleTimeString() : ""),
    el("td", { "data-desired": prop.name }, prop.desired ?? ""),
    el("td", { "data-outcome": prop.name }, prop.outcome),
  ];
  const action = el("td", {});
  if (admin && prop.writable) {
    const input = el("input", { class: "desired", "aria-label": `desired ${prop.name}`, "data-set": prop.name });
    const note = el("span", { class: "error" });
    const send = async () => {
      note.textContent = "";
      try {
        await api(`/api/devices/${device.namespace}/${device.name}/desired/${encodeURIComponent(prop.name)}`,
          { method: "PUT", body: JSON.stringify({ value: input.value }) });
      } catch (error) { note.textContent = error.message; }
    };
    action.append(input, el("button", { type: "button", onclick: send }, "Set"), note);
  }
  return el("tr", { "data-property": prop.name }, cells, action);
}

function renderLive(device, admin, table, header) {
  header.replaceChildren(stateBadge(device.state), " ", ...badges(device.conditions),
    el("span", { class: "muted" }, ` model ${device.model}, node ${device.node}`));
  for (const prop of device.properties) {
    let row = table.querySelector(`tr[data-property="${CSS.escape(prop.name)}"]`);
    if (!row) { table.append(propertyRow(prop, device, admin)); continue; }
    const value = row.querySelector("[data-value]");
    const shown = prop.reported.value ?? "—";
    if (value.textContent !== shown) {
      value.textContent = shown;
      value.classList.remove("flash"); void value.offsetWidth; value.classList.add("flash");
    }
    row.children[2].textContent = prop.reported.timestamp ? new Date(Number(prop.reported.timestamp)).toLocaleTimeString() : "";
    row.querySelector("[data-desired]").textContent = prop.desired ?? "";
    row.querySelector("[data-outcome]").textContent = prop.outcome;
  }
}

async function follow(path, onDocument, signal) {
  // The server sends the device again at every change, one JSON document per line.
  const response = await fetch(path, { signal, headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN)}` } });
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok) throw new Error(`live updates: ${response.status}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (!line.trim()) continue;
      const doc = JSON.parse(line);
      if (doc.error) throw new Error(doc.error);
      onDocument(doc);
    }
  }
}

async function devicePage(namespace, name, role) {
  const base = `/api/devices/${namespace}/${name}`;
  const device = await api(base);
  const admin = role === "admin";
  const header = el("p", { id: "device-state" });
  const table = el("table", { id: "properties" }, el("tr", {},
    ["Property", "Reported", "At", "Desired", "Outcome", admin ? "Set desired" : ""].map((h) => el("th", {}, h))));
  const live = el("p", { id: "live", class: "muted" }, "connecting for live values…");
  const chart = historyPanel(base, device.properties);
  const update = (doc) => {
    live.textContent = "live";
    renderLive(doc, admin, table, header);
    chart.onLive(doc);
    if (!performance.getEntriesByName("first-live-value").length) performance.mark("first-live-value");
  };
  const events = el("table", { id: "events" });
  main.replaceChildren(el("h1", {}, `${namespace}/${name}`), header, live, table, chart.section, el("h2", {}, "Events"), events);
  renderLive(device, admin, table, header);
  const stop = new AbortController();
  leave = () => stop.abort();
  follow(`${base}/live`, update, stop.signal)
    .then(() => { live.textContent = "live updates ended (reload to resume)"; })
    .catch((error) => { if (!stop.signal.aborted) live.textContent = `live updates stopped: ${error.message}`; });
  const { items } = await api(`${base}/events`);
  events.replaceChildren(el("tr", {}, ["Time", "Type", "Reason", "Message", "Count"].map((h) => el("th", {}, h))),
    ...items.map((e) => el("tr", {}, el("td", {}, e.time), el("td", {}, e.type), el("td", {}, e.reason),
      el("td", {}, e.message), el("td", {}, e.count))));
}

// ---- history charts ----------------------------------------------------------------------

const RANGES = [["15 min", 15 * 60e3], ["1 h", 3600e3], ["6 h", 6 * 3600e3], ["24 h", 86400e3], ["7 d", 7 * 86400e3]];

function historyPanel(base, properties) {
  const numeric = properties.filter((p) => ["int", "float", "double", "boolean", ""].includes(p.type));
  const select = el("select", { id: "history-property", "aria-label": "property" },
    numeric.map((p) => el("option", { value: p.name }, p.name)));
  const canvas = el("canvas", { id: "history-chart", class: "chart", width: 900, height: 260 });
  const note = el("p", { id: "history-note", class: "muted" });
  let range = RANGES[0][1], shown = null;  // shown: the raw points drawn, extended by live values
  const buttons = RANGES.map(([label, ms]) => el("button", {
    type: "button", "aria-pressed": String(ms === range), "data-range": label,
    onclick: (e) => { range = ms; buttons.forEach((b) => b.setAttribute("aria-pressed", String(b === e.currentTarget))); draw(); },
  }, label));
  async function draw() {
    const until = Date.now(), since = until - range;
    const query = new URLSearchParams({ property: select.value, since: String(since), until: String(until) });
    if (range > 15 * 60e3) query.set("step", `${Math.ceil(range / 300 / 1000)}s`);
    note.textContent = "loading…";
    shown = null;
    try {
      const answer = await api(`${base}/history?${query}`);
      const drawn = plot(canvas, answer.points, since, until);
      shown = answer.step ? null : { property: select.value, points: answer.points, since };
      note.textContent = `${answer.points.length} ${answer.step ? "steps" : "points"}${drawn ? "" : " (nothing numeric to draw)"}${answer.truncated ? ", truncated" : ""}`;
    } catch (error) {
      plot(canvas, [], since, until);
      note.textContent = error.message;
    }
  }
  function onLive(device) {
    // A raw chart grows with the values pushed to the page; stepped ones are redrawn on request.
    const prop = device.properties.find((p) => p.name === shown?.property);
    const t = Number(prop?.reported.timestamp);
    if (!shown || !prop || !t || (shown.points.length && t <= shown.points.at(-1).t)) return;
    shown.points.push({ t, v: prop.reported.value });
    plot(canvas, shown.points, shown.since, Date.now());
    note.textContent = `${shown.points.length} points`;
  }
  select.addEventListener("change", draw);
  if (numeric.length) draw();
  const section = el("section", { id: "history" }, el("h2", {}, "History"),
    el("div", { class: "ranges" }, select, " ", buttons), canvas, note);
  return { section, onLive };
}

function plot(canvas, points, since, until) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas, pad = 40;
  ctx.clearRect(0, 0, width, height);
  const rows = points.map((p) => ({ t: p.t, v: p.mean ?? toNumber(p.v), lo: p.min ?? toNumber(p.v), hi: p.max ?? toNumber(p.v) }))
    .filter((p) => Number.isFinite(p.v));
  canvas.dataset.points = String(rows.length);
  ctx.strokeStyle = "#9aa3b2"; ctx.fillStyle = "#6b7280"; ctx.font = "11px sans-serif";
  ctx.strokeRect(pad, 10, width - pad - 10, height - pad - 10);
  ctx.fillText(new Date(since).toLocaleString(), pad, height - 12);
  ctx.fillText(new Date(until).toLocaleString(), width - 150, height - 12);
  if (!rows.length) return false;
  let low = Math.min(...rows.map((p) => p.lo)), high = Math.max(...rows.map((p) => p.hi));
  if (low === high) { low -= 1; high += 1; }
  since = Math.max(since, Math.min(...rows.map((p) => p.t)));  // fitted to the data there is
  if (since >= until) since = until - 1000;
  ctx.clearRect(0, height - pad + 5, width, pad);
  ctx.fillText(new Date(since).toLocaleString(), pad, height - 12);
  ctx.fillText(new Date(until).toLocaleString(), width - 150, height - 12);
  const x = (t) => pad + ((t - since) / (until - since)) * (width - pad - 10);
  const y = (v) => 10 + (1 - (v - low) / (high - low)) * (height - pad - 10);
  ctx.fillText(String(+high.toFixed(3)), 2, 18); ctx.fillText(String(+low.toFixed(3)), 2, height - pad);
  if (points.length && points[0].min !== undefined) {
    ctx.fillStyle = "rgba(47, 111, 235, .15)";
    ctx.beginPath();
    rows.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.hi)) : ctx.moveTo(x(p.t), y(p.hi))));
    [...rows].reverse().forEach((p) => ctx.lineTo(x(p.t), y(p.lo)));
    ctx.fill();
  }
  ctx.strokeStyle = "#2f6feb"; ctx.lineWidth = 1.5;
  ctx.beginPath();
  rows.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
  ctx.stroke();
  return true;
}

function toNumber(value) {
  if (value === "true") return 1;
  if (value === "false") return 0;
  return value === null || value === "" ? NaN : Number(value);
}

// ---- routing -----------------------------------------------------------------------------

async function route(role) {
  leave();
  leave = () => {};
  const parts = location.hash.replace(/^#\//, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "nodes") await nodesPage();
    else if (parts[0] === "device" && parts.length === 3) await devicePage(parts[1], parts[2], role);
    else await devicesPage();
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin("That token is not accepted.");
    main.replaceChildren(el("p", { class: "error" }, error.message));
  }
}

async function start() {
  try {
    const who = await api("/api/whoami");
    document.getElementById("login").hidden = true;
    document.getElementById("signout").hidden = false;
    document.getElementById("who").textContent = `${who.name} (${who.role})`;
    window.onhashchange = () => route(who.role);
    await route(who.role);
  } catch (error) {
    showLogin(error instanceof Unauthorized && sessionStorage.getItem(TOKEN) ? "That token is not accepted." : "");
  }
}

start();
