// Sluice dashboard: plain JS, no dependencies. Pages are routed by the URL
// hash (#/, #/jobs/ID, #/topics/NAME, #/groups/NAME, #/cluster); live figures
// arrive as server-sent events read through fetch, so the bearer token can
// travel in a header. The cluster page polls instead. /api/v1/info says which
// pages the server has: a clustered pipeline instance has only the cluster
// page, which is then the landing page.
"use strict";

const main = document.getElementById("main");
const conn = document.getElementById("conn");
let token = localStorage.getItem("sluiceToken") || "";
let stream = null; // AbortController of the open event stream
let history = []; // job history points for the plots
let gen = 0; // route generation: late answers for an old page are dropped
let info = null; // /api/v1/info: {jobs, cluster}, once known
let timer = 0; // the cluster page's next poll
const POLL_MS = 2000;

// ---------- helpers ----------
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
const SVGNS = "http://www.w3.org/2000/svg";
function sv(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function human(n, unit) {
  unit = unit || "";
  if (n === null || n === undefined || isNaN(n)) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + "G" + unit;
  if (a >= 1e6) return (n / 1e6).toFixed(1) + "M" + unit;
  if (a >= 1e3) return (n / 1e3).toFixed(1) + "k" + unit;
  return (a < 10 && a > 0 && !Number.isInteger(n) ? n.toFixed(1) : Math.round(n)) + unit;
}
function bytes(n) {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}
function dur(ms) {
  if (ms === null || ms === undefined) return "–";
  const a = Math.abs(ms);
  if (a < 1000) return Math.round(ms) + " ms";
  if (a < 60000) return (ms / 1000).toFixed(1) + " s";
  if (a < 3600000) return (ms / 60000).toFixed(1) + " min";
  return (ms / 3600000).toFixed(1) + " h";
}
function wm(x) {
  if (x.watermark_final) return "end of input";
  if (x.watermark_ms === null || x.watermark_ms === undefined) return "none yet";
  return new Date(x.watermark_ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}
function badge(text) { return el("span", { class: "badge " + text }, text); }
function td(v, num) { return el("td", num ? { class: "num" } : {}, v); }
function table(head, rows, numCols) {
  const t = el("table");
  const tr = el("tr");
  head.forEach((h, i) => tr.append(el("th", numCols && numCols.includes(i) ? { class: "num" } : {}, h)));
  t.append(el("thead", {}, tr));
  const body = el("tbody");
  for (const r of rows) {
    const row = el("tr");
    r.forEach((c, i) => row.append(td(c, numCols && numCols.includes(i))));
    body.append(row);
  }
  t.append(body);
  return t;
}
function link(href, text) { return el("a", { href }, text); }

// ---------- transport ----------
function headers() { return token ? { Authorization: "Bearer " + token } : {}; }
async function api(path) {
  const r = await fetch(path, { headers: headers() });
  if (r.status === 401) { askToken(); throw new Error("unauthorized"); }
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
function askToken() {
  const f = document.getElementById("tokenform");
  f.classList.remove("hidden");
  f.onsubmit = (e) => {
    e.preventDefault();
    token = document.getElementById("token").value;
    localStorage.setItem("sluiceToken", token);
    f.classList.add("hidden");
    route();
  };
}
// listen reads a server-sent event stream with fetch and calls onEvent(name,
// data) for each event; it reconnects after errors until aborted.
function listen(path, onEvent) {
  if (stream) stream.abort();
  const ctl = new AbortController();
  stream = ctl;
  (async () => {
    while (!ctl.signal.aborted) {
      try {
        const r = await fetch(path, { headers: headers(), signal: ctl.signal });
        if (r.status === 401) { askToken(); return; }
        if (!r.ok) { const b = await r.json(); showError(b.error || r.statusText); return; }
        conn.textContent = "live"; conn.className = "conn live";
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const chunk = buf.slice(0, i); buf = buf.slice(i + 2);
            let name = "message", data = "";
            for (const line of chunk.split("\n")) {
              if (line.startsWith("event:")) name = line.slice(6).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trim();
            }
            if (data) onEvent(name, JSON.parse(data));
          }
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
      }
      conn.textContent = "reconnecting…"; conn.className = "conn";
      await new Promise((res) => setTimeout(res, 2000));
    }
  })();
}
function showError(msg) {
  main.replaceChildren(el("p", { class: "err", id: "error" }, msg),
    link("#/", info && !info.jobs ? "back to the cluster page" : "back to overview"));
}
function setLive(live) {
  conn.textContent = live ? "live" : "reconnecting…";
  conn.className = live ? "conn live" : "conn";
}

// ---------- overview ----------
function renderOverview(ov) {
  const jobs = ov.jobs.map((j) => [
    link("#/jobs/" + encodeURIComponent(j.id), j.id), badge(j.status),
    human(j.records_in_per_sec, "/s"), human(j.records_out_per_sec, "/s"),
    wm(j), dur(j.watermark_lag_ms), badge(j.backpressure),
    j.checkpoints_available ? (j.last_checkpoint ? "#" + j.last_checkpoint.id + " " + j.last_checkpoint.status : "none") : "n/a",
  ]);
  const topics = ov.topics.filter((t) => !t.internal).map((t) => [
    link("#/topics/" + encodeURIComponent(t.name), t.name), t.partitions,
    t.earliest_offsets.reduce((a, b) => a + b, 0), t.latest_offsets.reduce((a, b) => a + b, 0),
    human(t.records), bytes(t.bytes), human(t.records_per_sec, "/s"), bytes(Math.round(t.bytes_per_sec)) + "/s",
  ]);
  const groups = ov.groups.map((g) => [link("#/groups/" + encodeURIComponent(g.name), g.name), g.state, g.members, g.partitions, human(g.total_lag)]);
  const c = [
    el("h1", {}, "Overview"),
    el("div", { class: "card" }, el("h2", {}, "Jobs"),
      jobs.length ? table(["job", "status", "in", "out", "watermark", "wm lag", "backpressure", "last checkpoint"], jobs, [2, 3, 5])
        : el("p", { class: "muted" }, "No running jobs.")),
    el("div", { class: "card" }, el("h2", {}, "Topics"),
      topics.length ? table(["topic", "partitions", "earliest (Σ)", "latest (Σ)", "records", "size", "append rate", "bytes rate"], topics, [1, 2, 3, 4, 5, 6, 7])
        : el("p", { class: "muted" }, "No topics.")),
  ];
  if (groups.length) c.push(el("div", { class: "card" }, el("h2", {}, "Consumer groups"), table(["group", "state", "members", "partitions", "total lag"], groups, [2, 3, 4])));
  c.push(el("p", { class: "muted", id: "updated" }, "updated " + new Date(ov.time).toLocaleTimeString() + " · sample " + ov.seq));
  main.replaceChildren(...c);
}

// ---------- job page ----------

// graphNodes merges the job's graph (from its plan: every operator, with
// kind and parallelism) with the live figures of its vertices (by name).
function graphNodes(job) {
  const live = new Map(job.vertices.map((v) => [v.id, v]));
  const out = [], seen = new Set();
  for (const g of job.graph.vertices || []) {
    if (seen.has(g.id)) continue;
    seen.add(g.id);
    const v = live.get(g.id) || { id: g.id, parallelism: g.parallelism, task: g.task, records_in: 0, records_out: 0,
      records_in_per_sec: 0, records_out_per_sec: 0, busy_ms_per_sec: 0, idle_ms_per_sec: 0, backpressured_ms_per_sec: 0,
      backpressure: "ok", watermark_ms: null, watermark_final: false, watermark_lag_ms: null };
    out.push(Object.assign({}, v, { kind: g.kind || v.kind, parallelism: g.parallelism || v.parallelism, task: g.task || v.task }));
  }
  for (const v of job.vertices) if (!seen.has(v.id)) { seen.add(v.id); out.push(v); }
  return out;
}

// layout places a DAG in layers left to right: each vertex in the layer of
// its longest path from a source, then vertices ordered within their
// layer by the mean position of their neighbours in the layer before
// (down sweeps) and after (up sweeps), which removes most crossings.
function layout(vertices, edges) {
  const ids = vertices.map((v) => v.id);
  const known = new Set(ids);
  const inc = new Map(ids.map((id) => [id, []])), outs = new Map(ids.map((id) => [id, []]));
  for (const e of edges) if (known.has(e.to) && known.has(e.from)) { inc.get(e.to).push(e.from); outs.get(e.from).push(e.to); }
  const layer = new Map();
  const visit = (id, seen) => {
    if (layer.has(id)) return layer.get(id);
    if (seen.has(id)) return 0; // a cycle: cannot happen in a dataflow
    seen.add(id);
    let l = 0;
    for (const f of inc.get(id)) l = Math.max(l, visit(f, seen) + 1);
    layer.set(id, l);
    return l;
  };
  ids.forEach((id) => visit(id, new Set()));
  const layers = [];
  for (const id of ids) { const l = layer.get(id); (layers[l] = layers[l] || []).push(id); }
  for (let l = 0; l < layers.length; l++) layers[l] = layers[l] || [];
  const order = new Map();
  const index = () => layers.forEach((ls) => ls.forEach((id, i) => order.set(id, i)));
  index();
  const sweep = (l, nbrs) => {
    const bc = new Map();
    for (const id of layers[l]) {
      const ps = nbrs.get(id).filter((n) => order.has(n) && Math.abs(layer.get(n) - l) >= 1);
      bc.set(id, ps.length ? ps.reduce((a, n) => a + order.get(n), 0) / ps.length : order.get(id));
    }
    layers[l].sort((a, b) => bc.get(a) - bc.get(b) || order.get(a) - order.get(b));
    layers[l].forEach((id, i) => order.set(id, i));
  };
  for (let it = 0; it < 4; it++) {
    for (let l = 1; l < layers.length; l++) sweep(l, inc);
    for (let l = layers.length - 2; l >= 0; l--) sweep(l, outs);
  }
  const rows = Math.max(1, ...layers.map((ls) => ls.length));
  const pos = new Map();
  layers.forEach((ls, l) => ls.forEach((id, r) => pos.set(id, { col: l, row: r + (rows - ls.length) / 2 })));
  return { pos, cols: Math.max(1, layers.length), rows };
}

const VW = 210, VH = 124, GX = 90, GY = 26;
// graphZoom is "fit" (scaled to the card's width, the default) or "full"
// (natural size, scrolling sideways).
let graphZoom = "fit";
function renderGraph(container, job) {
  const vs = graphNodes(job), es = job.graph.edges;
  const { pos, cols, rows } = layout(vs, es);
  const W = cols * (VW + GX) - GX + 20, H = rows * (VH + GY) - GY + 20;
  // Fit the card's width; a graph so wide that its text would be
  // unreadable keeps a minimum scale and scrolls.
  const avail = Math.max(320, container.clientWidth || 1000);
  const scale = graphZoom === "full" ? 1 : Math.max(0.5, Math.min(1, avail / W));
  const svg = sv("svg", { width: Math.round(W * scale), height: Math.round(H * scale), viewBox: `0 0 ${W} ${H}`, id: "graph-svg",
    "data-nodes": vs.length, "data-edges": es.length });
  const defs = sv("defs");
  const mk = sv("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  mk.append(sv("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a93a6" }));
  defs.append(mk); svg.append(defs);
  const xy = (id) => { const p = pos.get(id); return { x: 10 + p.col * (VW + GX), y: 10 + p.row * (VH + GY) }; };
  // Edges leave and enter spread over the boxes' sides, in the order of
  // the vertices at their other end, so that fan-in and fan-out stay
  // apart.
  const outsOf = new Map(), insOf = new Map();
  for (const e of es) {
    if (!pos.has(e.from) || !pos.has(e.to)) continue;
    (outsOf.get(e.from) || outsOf.set(e.from, []).get(e.from)).push(e);
    (insOf.get(e.to) || insOf.set(e.to, []).get(e.to)).push(e);
  }
  const yOf = (id) => pos.get(id).row;
  for (const l of outsOf.values()) l.sort((a, b) => yOf(a.to) - yOf(b.to));
  for (const l of insOf.values()) l.sort((a, b) => yOf(a.from) - yOf(b.from) || (a.input || 0) - (b.input || 0));
  const port = (list, e, y) => { const i = list.indexOf(e), n = list.length; return y + VH * (i + 1) / (n + 1); };
  for (const e of es) {
    if (!pos.has(e.from) || !pos.has(e.to)) continue;
    const a = xy(e.from), b = xy(e.to);
    const x1 = a.x + VW, y1 = port(outsOf.get(e.from), e, a.y), x2 = b.x, y2 = port(insOf.get(e.to), e, b.y), mx = (x1 + x2) / 2;
    const cls = "edge" + (job.graph.inferred ? " inferred" : "") + (e.exchange === "chained" ? " chained" : "");
    svg.append(sv("path", { class: cls, "data-from": e.from, "data-to": e.to, d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 2},${y2}`, "marker-end": "url(#arrow)" }));
    let label = e.exchange;
    if (e.input) label += " → input " + (e.input + 1);
    if (e.side_output) label += " [" + e.side_output + "]";
    svg.append(sv("text", { class: "elabel", x: mx, y: (y1 + y2) / 2 - 6, "text-anchor": "middle" }, label));
  }
  for (const v of vs) {
    const { x, y } = xy(v.id);
    const busy = Math.min(1, (v.busy_ms_per_sec || 0) / 1000), idle = Math.min(1, (v.idle_ms_per_sec || 0) / 1000), bp = Math.min(1, (v.backpressured_ms_per_sec || 0) / 1000);
    const g = sv("g", { class: "vertex " + (v.backpressure || "ok"), "data-id": v.id, transform: `translate(${x},${y})` });
    // The fill goes from white (idle) to orange (busy), or to red when
    // the operator waits on backpressure more than it works; the border
    // is the backpressure level. (Set through CSSOM: the page's content
    // security policy refuses style attributes.)
    const box = sv("rect", { width: VW, height: VH, rx: 7 });
    box.style.fill = bp > busy ? `hsl(4,80%,${Math.round(100 - 14 * bp)}%)` : `hsl(30,90%,${Math.round(100 - 22 * busy)}%)`;
    g.append(box);
    g.append(sv("text", { class: "title", x: 10, y: 20 }, v.id + "  ×" + v.parallelism));
    g.append(sv("text", { class: "fig muted v-kind", x: 10, y: 36 }, (v.kind || "operator") + (v.task && v.task !== v.id ? " · chained in " + v.task : "")));
    g.append(sv("text", { class: "fig v-rate", x: 10, y: 52 }, "in " + human(v.records_in_per_sec, "/s") + "   out " + human(v.records_out_per_sec, "/s")));
    g.append(sv("text", { class: "fig v-total", x: 10, y: 68 }, "total in " + human(v.records_in) + "   out " + human(v.records_out)));
    g.append(sv("text", { class: "fig v-time", x: 10, y: 84 }, "busy " + Math.round(busy * 100) + "%  idle " + Math.round(idle * 100) + "%  bp " + Math.round(bp * 100) + "%"));
    // Time bar: busy, backpressured, idle.
    let bx = 10;
    for (const [cls, f] of [["t-busy", busy], ["t-bp", bp], ["t-idle", idle]]) {
      const w = Math.round(f * (VW - 20));
      if (w > 0) g.append(sv("rect", { class: "tbar " + cls, x: bx, y: 90, width: w, height: 5 }));
      bx += w;
    }
    g.append(sv("text", { class: "fig v-wm", x: 10, y: 114 }, "wm " + (v.watermark_lag_ms != null ? "lag " + dur(v.watermark_lag_ms) : wm(v))));
    svg.append(g);
  }
  const zoom = el("button", { class: "zoom", id: "graph-zoom", type: "button" }, graphZoom === "fit" ? "actual size" : "fit to width");
  zoom.onclick = () => { graphZoom = graphZoom === "fit" ? "full" : "fit"; renderGraph(container, job); };
  const bar = el("div", { class: "graphbar muted" }, scale < 1 ? "scaled to " + Math.round(scale * 100) + "% " : "", scale < 1 || graphZoom === "full" ? zoom : "");
  container.replaceChildren(bar, svg);
  if (job.graph.inferred) container.append(el("p", { class: "muted" }, "Edges inferred (the job did not describe its graph): a linear pipeline is assumed."));
}

function plot(container, series, opts) {
  // series: [{cls, points: [[t, v]]}]
  const W = 520, H = 150, L = 48, B = 20, T = 8, R = 8;
  const svg = sv("svg", { class: "plot", width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  let t0 = Infinity, t1 = -Infinity, v1 = 0;
  for (const s of series) for (const [t, v] of s.points) { t0 = Math.min(t0, t); t1 = Math.max(t1, t); if (v !== null) v1 = Math.max(v1, v); }
  if (!isFinite(t0)) { t0 = Date.now() - 60000; t1 = Date.now(); }
  if (t1 - t0 < 10000) t0 = t1 - 10000;
  if (v1 <= 0) v1 = 1;
  v1 *= 1.1;
  const X = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const Y = (v) => H - B - (v / v1) * (H - B - T);
  svg.append(sv("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  svg.append(sv("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  for (const f of [0, 0.5, 1]) {
    const v = (v1 / 1.1) * f;
    svg.append(sv("text", { class: "tick", x: L - 4, y: Y(v) + 3, "text-anchor": "end" }, opts.fmt(v)));
    svg.append(sv("line", { class: "axis", x1: L, y1: Y(v), x2: W - R, y2: Y(v), "stroke-dasharray": "2 3" }));
  }
  const span = Math.round((t1 - t0) / 1000);
  svg.append(sv("text", { class: "tick", x: L, y: H - 5 }, "-" + span + "s"));
  svg.append(sv("text", { class: "tick", x: W - R, y: H - 5, "text-anchor": "end" }, "now"));
  for (const s of series) {
    let d = "", pen = false;
    for (const [t, v] of s.points) {
      if (v === null) { pen = false; continue; }
      d += (pen ? "L" : "M") + X(t).toFixed(1) + "," + Y(v).toFixed(1);
      pen = true;
    }
    if (d) svg.append(sv("path", { class: s.cls, d }));
  }
  container.replaceChildren(svg);
}

function renderJob(job, ckpts) {
  let page = document.getElementById("jobpage");
  if (!page || page.dataset.job !== job.id) {
    page = el("div", { id: "jobpage" });
    page.dataset.job = job.id;
    page.append(
      el("h1", {}, "Job ", el("span", { id: "job-id" }, job.id), " ", el("span", { id: "job-status" })),
      el("div", { class: "card stats", id: "job-stats" }),
      el("div", { class: "card" }, el("h2", {}, "Dataflow"), el("div", { id: "graph" })),
      el("div", { class: "row" },
        el("div", { class: "card" }, el("h2", {}, "Throughput (records/s)"),
          el("div", { class: "legend" }, el("span", { class: "in" }, "— in (sources)"), el("span", { class: "out" }, "— out (sinks)")),
          el("div", { id: "plot-tput" })),
        el("div", { class: "card" }, el("h2", {}, "Watermark lag"),
          el("div", { class: "legend" }, el("span", { class: "lag" }, "— wall clock minus sink watermark")),
          el("div", { id: "plot-lag" }))),
      el("div", { class: "card" }, el("h2", {}, "Latency"), el("div", { id: "latency" })),
      el("div", { class: "card" }, el("h2", {}, "Subtasks"), el("div", { id: "subtasks" })),
      el("div", { class: "card" }, el("h2", {}, "Checkpoints"), el("div", { id: "checkpoints" })));
    main.replaceChildren(page);
  }
  document.getElementById("job-status").replaceChildren(badge(job.status));
  const stat = (k, v, id) => el("div", { class: "stat" }, el("div", { class: "v", id }, v), el("div", { class: "k" }, k));
  document.getElementById("job-stats").replaceChildren(
    stat("records in/s", human(job.records_in_per_sec), "stat-in"),
    stat("records out/s", human(job.records_out_per_sec), "stat-out"),
    stat("records in (total)", human(job.records_in), "stat-total-in"),
    stat("watermark", wm(job), "stat-wm"),
    stat("watermark lag", dur(job.watermark_lag_ms), "stat-lag"),
    stat("backpressure", job.backpressure, "stat-bp"),
    stat("last checkpoint", job.checkpoints_available ? (job.last_checkpoint ? "#" + job.last_checkpoint.id : "none") : "n/a", "stat-ckpt"));
  if (job.error) document.getElementById("job-stats").append(el("div", { class: "err" }, job.error));
  renderGraph(document.getElementById("graph"), job);
  const pts = history.slice(-600);
  plot(document.getElementById("plot-tput"), [
    { cls: "l-in", points: pts.map((p) => [p.t, p.in]) },
    { cls: "l-out", points: pts.map((p) => [p.t, p.out]) }], { fmt: (v) => human(v) });
  plot(document.getElementById("plot-lag"), [{ cls: "l-lag", points: pts.map((p) => [p.t, p.wm_lag_ms]) }], { fmt: dur });
  const rows = [];
  for (const v of job.vertices) for (const s of v.subtasks) rows.push([v.id, s.subtask, s.status, human(s.records_in_per_sec, "/s"), human(s.records_out_per_sec, "/s"),
    Math.round(s.busy_ms_per_sec), Math.round(s.idle_ms_per_sec), Math.round(s.backpressured_ms_per_sec), wm(s),
    s.split ? s.split + (s.lag != null ? ": " + human(s.lag) : "") : ""]);
  renderLatency(document.getElementById("latency"), job.latency);
  document.getElementById("subtasks").replaceChildren(table(["operator", "subtask", "status", "in", "out", "busy ms/s", "idle ms/s", "bp ms/s", "watermark", "split lag"], rows, [1, 3, 4, 5, 6, 7]));
  if (ckpts) renderCheckpoints(ckpts);
}

// renderLatency lists the job's latency histograms: end-to-end per sink
// (source read to sink write, and to commit under exactly-once), latency
// markers per operator and checkpoint phases; p50/p99 of the last sample
// interval and since the start.
function renderLatency(box, lat) {
  const latMs = (ms) => ms != null && Math.abs(ms) < 10 ? ms.toFixed(2) + " ms" : dur(ms);
  if (!lat || !lat.length) { box.replaceChildren(el("p", { class: "muted" }, "No latency reported yet.")); return; }
  const what = (l) => l.kind === "sink" ? "sink " + l.operator + " (" + l.stage + ")" :
    l.kind === "marker" ? "marker at " + l.operator : "checkpoint " + l.stage;
  const order = { sink: 0, marker: 1, checkpoint: 2 };
  const rows = lat.slice().sort((a, b) => order[a.kind] - order[b.kind]).map((l) => [what(l),
    l.recent_p50_ms != null ? latMs(l.recent_p50_ms) : "–", l.recent_p99_ms != null ? latMs(l.recent_p99_ms) : "–",
    latMs(l.p50_ms), latMs(l.p99_ms), human(l.count)]);
  box.replaceChildren(table(["where", "p50 (now)", "p99 (now)", "p50 (all)", "p99 (all)", "count"], rows, [1, 2, 3, 4, 5]));
}

function renderCheckpoints(c) {
  const box = document.getElementById("checkpoints");
  if (!box) return;
  if (!c.available) { box.replaceChildren(el("p", { class: "muted" }, "Not available: " + c.reason + ".")); return; }
  if (!c.checkpoints.length) { box.replaceChildren(el("p", { class: "muted" }, "No checkpoint yet.")); return; }
  box.replaceChildren(table(["id", "status", "started", "duration", "size", "alignment", "error"],
    c.checkpoints.slice().reverse().map((k) => [k.partial && !k.id ? "–" : k.id, badge(k.status), new Date(k.started).toLocaleTimeString(),
      k.status === "failed" && k.partial ? "–" : dur(k.duration_ns / 1e6),
      k.partial ? "–" : bytes(k.size_bytes), k.partial || k.alignment_unknown ? "–" : dur(k.alignment_ns / 1e6), k.error || ""]), [0, 3, 4, 5]));
  if (c.checkpoints.some((k) => k.partial)) box.append(el("p", { class: "muted" }, "The job reports checkpoint counters only: size and alignment are unknown, and checkpoints completed between two samples are not listed."));
}

// ckKey changes whenever the job's checkpoint history may have changed.
function ckKey(job) {
  const c = job.checkpoint_counts;
  if (c) return c.completed + "/" + c.failed;
  return job.last_checkpoint ? job.last_checkpoint.id + job.last_checkpoint.status : "";
}

async function showJob(id, g) {
  const base = "/api/v1/jobs/" + encodeURIComponent(id);
  let job, hist, ckpts;
  try {
    [job, hist, ckpts] = await Promise.all([api(base), api(base + "/history"), api(base + "/checkpoints")]);
  } catch (e) { if (g === gen) showError(e.message); return; }
  if (g !== gen) return;
  history = hist;
  renderJob(job, ckpts);
  let lastCk = ckKey(job);
  listen(base + "/events", (name, ev) => {
    if (g !== gen) return;
    if (name === "gone") { showError("job " + id + " is no longer registered"); return; }
    if (name !== "job") return;
    if (ev.point && ev.point.t && (!history.length || history[history.length - 1].t < ev.point.t)) history.push(ev.point);
    renderJob(ev.job, null);
    const k = ckKey(ev.job);
    if (k !== lastCk) {
      lastCk = k;
      api(base + "/checkpoints").then((c) => { if (g === gen) renderCheckpoints(c); }, () => {});
    }
  });
}

// ---------- topic page ----------
function renderTopic(t) {
  const rows = t.partitions.map((p) => [p.partition, p.earliest_offset, p.latest_offset, p.latest_offset - p.earliest_offset,
    human(p.records_per_sec, "/s"), p.segments, bytes(p.bytes),
    p.groups.length ? p.groups.map((g) => g.group + ": lag " + g.lag + " (at " + g.committed_offset + ")").join(", ") : "–"]);
  main.replaceChildren(
    el("h1", {}, "Topic ", el("span", { id: "topic-name" }, t.name)),
    el("div", { class: "card stats" },
      el("div", { class: "stat" }, el("div", { class: "v" }, t.partitions.length), el("div", { class: "k" }, "partitions")),
      el("div", { class: "stat" }, el("div", { class: "v" }, human(t.records)), el("div", { class: "k" }, "records retained")),
      el("div", { class: "stat" }, el("div", { class: "v" }, bytes(t.bytes)), el("div", { class: "k" }, "size")),
      el("div", { class: "stat" }, el("div", { class: "v" }, human(t.records_per_sec, "/s")), el("div", { class: "k" }, "append rate"))),
    el("div", { class: "card" }, el("h2", {}, "Partitions"),
      table(["partition", "earliest", "latest", "records", "append rate", "segments", "size", "consumer groups"], rows, [0, 1, 2, 3, 4, 5, 6])));
}

async function showTopic(name, g) {
  const path = "/api/v1/topics/" + encodeURIComponent(name);
  const show = (t) => { if (g === gen) renderTopic(t); };
  const fail = (e) => { if (g === gen) showError(e.message); };
  try { show(await api(path)); } catch (e) { fail(e); return; }
  if (g !== gen) return;
  listen("/api/v1/events", () => { if (g === gen) api(path).then(show, fail); });
}

// ---------- group page ----------
function renderGroup(g) {
  const assigned = (m) => m.assignment.length ? m.assignment.map((a) => a.topic + " [" + a.partitions.join(", ") + "]").join("; ") : "–";
  const members = g.members.map((m) => [m.member_id, m.client_id, m.client_host,
    m.subscription.join(", ") || "–", m.decode_error ? "undecodable: " + m.decode_error : assigned(m)]);
  const parts = (g.partitions || []).map((p) => [p.topic, p.partition, p.committed_offset, p.latest_offset, p.lag, p.member || "–"]);
  main.replaceChildren(
    el("h1", {}, "Consumer group ", el("span", { id: "group-name" }, g.name)),
    el("div", { class: "card stats" },
      el("div", { class: "stat" }, el("div", { class: "v" }, g.state), el("div", { class: "k" }, "state")),
      el("div", { class: "stat" }, el("div", { class: "v" }, g.members.length), el("div", { class: "k" }, "members")),
      el("div", { class: "stat" }, el("div", { class: "v" }, human(g.total_lag)), el("div", { class: "k" }, "total lag"))),
    el("div", { class: "card" }, el("h2", {}, "Members"),
      members.length ? table(["member", "client", "host", "subscription", "assigned partitions"], members, [])
        : el("p", { class: "muted" }, "No live members.")),
    el("div", { class: "card" }, el("h2", {}, "Committed offsets"),
      parts.length ? table(["topic", "partition", "committed", "latest", "lag", "member"], parts, [1, 2, 3, 4])
        : el("p", { class: "muted" }, "No committed offsets.")));
}

async function showGroup(name, g) {
  const path = "/api/v1/groups/" + encodeURIComponent(name);
  const show = (x) => { if (g === gen) renderGroup(x); };
  const fail = (e) => { if (g === gen) showError(e.message); };
  try { show(await api(path)); } catch (e) { fail(e); return; }
  if (g !== gen) return;
  listen("/api/v1/events", () => { if (g === gen) api(path).then(show, fail); });
}

// ---------- cluster page ----------
// renderCluster shows a clustered pipeline instance (cluster.Status): the
// application, this instance, the group's members, this instance's tasks,
// its commit, rebalance and restore figures, the autoscaling signal and the
// rebalance history, latest first.
function renderCluster(st) {
  const members = st.members || [], tasks = st.tasks || [], hist = (st.rebalance_history || []).slice().reverse();
  const when = (t) => !t || new Date(t).getUTCFullYear() <= 1 ? "never" : new Date(t).toLocaleTimeString();
  const stat = (k, v, id) => el("div", { class: "stat" }, el("div", { class: "v", id }, v), el("div", { class: "k" }, k));
  const lag = tasks.reduce((a, t) => a + t.lag, 0);
  const n = Math.max(1, members.length), rec = st.recommended_instances;
  const advice = rec > n ? "scale out: " + rec + " instances recommended, " + n + " running"
    : rec < n ? "scale in: " + rec + " instance" + (rec === 1 ? "" : "s") + " recommended, " + n + " running"
    : "the " + n + " running instance" + (n === 1 ? " fits" : "s fit") + " the load";
  const memberRows = members.map((m) => [
    m.member_id === st.member_id ? el("span", {}, m.instance_id || m.member_id, " ", badge("this")) : (m.instance_id || m.member_id),
    m.host, m.client_id, m.tasks || "–"]);
  const taskRows = tasks.map((t) => [t.id, t.topic, t.partition, t.records, t.lag, t.restored ? "yes" : "no"]);
  const histRows = hist.map((e) => [new Date(e.time).toLocaleString(), e.assigned || "–", e.revoked || "–"]);
  const c = [
    el("h1", {}, "Cluster ", el("span", { id: "cluster-app" }, st.application)),
    el("p", { class: "muted" }, "input topics: " + ((st.topics || []).join(", ") || "–") + " · member " + (st.member_id || "not joined")),
  ];
  if (st.error) c.push(el("p", { class: "err", id: "cluster-error" }, st.error));
  c.push(
    el("div", { class: "card stats", id: "cluster-stats" },
      stat("this instance", st.instance, "stat-instance"),
      stat("generation", st.generation, "stat-generation"),
      stat("delivery", st.exactly_once ? "exactly-once" : "at-least-once", "stat-delivery"),
      stat("tasks", tasks.length, "stat-tasks"),
      stat("lag (this instance)", human(lag), "stat-lag"),
      stat("commits", human(st.commits), "stat-commits"),
      stat("aborts", human(st.aborts), "stat-aborts"),
      stat("last commit", when(st.last_commit), "stat-last-commit"),
      stat("rebalances", human(st.rebalances), "stat-rebalances"),
      stat("restores", human(st.restores) + (st.restores ? " (" + dur(st.restore_seconds * 1000) + ")" : ""), "stat-restores")),
    el("div", { class: "card" }, el("h2", {}, "Autoscaling"),
      el("div", { class: "stats" },
        stat("busy ratio (last window)", Math.round(st.busy_ratio * 100) + "%", "stat-busy"),
        stat("lag growth", human(st.lag_growth_per_second, "/s"), "stat-lag-growth"),
        stat("recommended instances", rec, "stat-recommended")),
      el("p", { class: "muted", id: "cluster-advice" }, advice)),
    el("div", { class: "card", id: "cluster-members" }, el("h2", {}, "Members"),
      memberRows.length ? table(["instance", "host", "client", "tasks"], memberRows, [])
        : el("p", { class: "muted" }, "No members described.")),
    el("div", { class: "card", id: "cluster-tasks" }, el("h2", {}, "Tasks of this instance"),
      taskRows.length ? table(["task", "topic", "partition", "records", "lag", "restored"], taskRows, [2, 3, 4])
        : el("p", { class: "muted" }, "No tasks assigned.")),
    el("div", { class: "card", id: "cluster-history" }, el("h2", {}, "Rebalances (latest first)"),
      histRows.length ? table(["time", "assigned", "revoked"], histRows, [])
        : el("p", { class: "muted" }, "No rebalance yet.")),
    el("p", { class: "muted", id: "updated" }, "updated " + new Date().toLocaleTimeString()));
  main.replaceChildren(...c);
}

// showCluster polls /api/v1/cluster every POLL_MS until the route changes;
// a failed poll keeps the last figures on screen.
function showCluster(g) {
  const poll = async () => {
    timer = 0;
    try {
      const st = await api("/api/v1/cluster");
      if (g !== gen) return;
      renderCluster(st);
      setLive(true);
    } catch (e) {
      if (g !== gen || e.message === "unauthorized") return; // the token form restarts the route
      if (document.getElementById("cluster-stats")) setLive(false); else showError(e.message);
    }
    if (g === gen) timer = setTimeout(poll, POLL_MS);
  };
  poll();
}

// ---------- routing ----------
function renderNav() {
  const nav = document.getElementById("nav");
  const kids = [];
  if (info.jobs) kids.push(link("#/", "overview"));
  if (info.cluster) kids.push(el("a", { href: "#/cluster", id: "nav-cluster" }, "cluster"));
  nav.replaceChildren(...kids);
}

function route() {
  const g = ++gen;
  if (stream) { stream.abort(); stream = null; }
  if (timer) { clearTimeout(timer); timer = 0; }
  if (!info) {
    api("/api/v1/info").then((i) => { info = i; renderNav(); if (g === gen) route(); },
      (e) => { if (g === gen) showError(e.message); });
    return;
  }
  const h = location.hash || "#/";
  if (h === "#/cluster" || (h === "#/" && !info.jobs)) {
    if (info.cluster) return showCluster(g);
    return showError("This server runs no clustered pipeline instance.");
  }
  if (!info.jobs) return showError("This server is a clustered pipeline instance: it has the cluster page only.");
  let m;
  if ((m = h.match(/^#\/jobs\/(.+)$/))) return showJob(decodeURIComponent(m[1]), g);
  if ((m = h.match(/^#\/topics\/(.+)$/))) return showTopic(decodeURIComponent(m[1]), g);
  if ((m = h.match(/^#\/groups\/(.+)$/))) return showGroup(decodeURIComponent(m[1]), g);
  api("/api/v1/overview").then((ov) => { if (g === gen) renderOverview(ov); }, (e) => { if (g === gen) showError(e.message); });
  listen("/api/v1/events", (name, ov) => { if (g === gen && name === "overview") renderOverview(ov); });
}
window.addEventListener("hashchange", route);
route();
