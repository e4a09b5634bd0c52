// The viewer page: asks the worker (bundle/worker.js) to read the file and draws what it returns.
// Everything from the file reaches the page as text nodes or SVG attributes, never as HTML.
"use strict";

const SOURCE_NAMES = ["none", "ground truth", "generated"];
const ASSERTIONS = { "-1": "not recorded", 0: "present", 1: "absent", 2: "uncertain" };
const TYPE_COLOURS = ["#4263eb", "#2f9e44", "#ae3ec9", "#f08c00", "#1098ad", "#e64980", "#74b816", "#7048e8"];
// viridis at 0, 0.25, 0.5, 0.75, 1
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
const REQUEST_TIMEOUT_MS = 60000; // a file that takes longer than this to parse is refused
const SHOWN_ROWS = 2000; // rows drawn in the record list at once; search narrows the rest
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const state = { file: null, listing: [], selected: null, record: null, slice: 0 };

// -- the worker ------------------------------------------------------------------------------
let worker = null;
let nextId = 0;
const pending = new Map();

function startWorker() {
  // from the function's source text: a Blob URL works over HTTP and from file:// alike
  const source = `(${nfViewerWorker.toString()})()`;
  worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
  worker.onmessage = (event) => {
    const { id, ok, result, error } = event.data;
    const entry = pending.get(id);
    if (!entry) return;
    pending.delete(id);
    clearTimeout(entry.timer);
    if (ok) entry.resolve(result);
    else entry.reject(Object.assign(new Error(error.message), { code: error.code }));
  };
  worker.onerror = (event) => failAll(new Error(`the reader stopped: ${event.message || "worker error"}`));
}

function restartWorker() {
  worker.terminate();
  failAll(new Error("the reader was restarted"));
  startWorker();
}

function failAll(error) {
  for (const entry of pending.values()) {
    clearTimeout(entry.timer);
    entry.reject(error);
  }
  pending.clear();
}

function request(message) {
  return new Promise((resolve, reject) => {
    const id = ++nextId;
    // a hostile file can make the parser work for a long time: the page stays responsive, and after
    // the timeout the worker is stopped and replaced
    const timer = setTimeout(() => {
      pending.delete(id);
      restartWorker();
      reject(Object.assign(new Error(`reading took longer than ${REQUEST_TIMEOUT_MS / 1000} s; the file was refused`), { code: "NF-VIEW" }));
    }, REQUEST_TIMEOUT_MS);
    pending.set(id, { resolve, reject, timer });
    worker.postMessage({ id, ...message });
  });
}

// -- opening files ---------------------------------------------------------------------------
function showError(err) {
  const box = $("error");
  box.hidden = !err;
  box.textContent = err ? `Refused: ${err.message}` : "";
  if (err) box.dataset.code = err.code || "";
}

async function openFile(message, label) {
  showError(null);
  $("status").textContent = `Reading ${label}…`;
  $("record").hidden = true;
  $("empty").hidden = false;
  state.listing = [];
  renderList();
  try {
    const info = await request({ op: "open", ...message });
    state.file = info;
    state.listing = info.listing;
    $("search").disabled = false;
    const size = info.size >= 2 ** 20 ? `${(info.size / 2 ** 20).toFixed(1)} MiB` : `${(info.size / 1024).toFixed(1)} KiB`;
    $("status").textContent = `${info.name}: ${info.n} records, ${size}, format ${info.formatVersion}` +
      (info.warnings.length ? ` — ${info.warnings.join("; ")}` : "");
    renderList();
    if (state.listing.length) selectRecord(state.listing[0].index);
  } catch (err) {
    state.file = null;
    $("status").textContent = `${label} was not opened.`;
    showError(err);
    // a refused file may have left the HDF5 library mid-way (or aborted it): the next file gets a fresh reader
    restartWorker();
  }
}

$("file-input").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) openFile({ file, name: file.name }, file.name);
});

// `neural-format view` serves files.json with the file (or the shards) it was given
async function openServed() {
  if (!location.protocol.startsWith("http")) return;
  let files;
  try {
    const response = await fetch("files.json", { cache: "no-store" });
    if (!response.ok) return;
    files = (await response.json()).files;
  } catch {
    return;
  }
  if (!files || !files.length) return;
  const select = $("shard-select");
  select.replaceChildren(...files.map((f, k) => Object.assign(document.createElement("option"), { value: k, textContent: f.name })));
  select.hidden = files.length < 2;
  const open = (k) => openFile({ url: new URL(files[k].url, location.href).href, name: files[k].name }, files[k].name);
  select.onchange = () => open(Number(select.value));
  open(0);
}

// -- the record list ---------------------------------------------------------------------------
function formatLabels(values) {
  const names = (state.file && state.file.meta.label_names) || [];
  return values.map((v, k) => `${names[k] ?? k}=${Number.isNaN(v) ? "?" : v}`).join(" ");
}

function renderList() {
  const query = $("search").value.trim().toLowerCase();
  const rows = query ? state.listing.filter((r) => r.id.toLowerCase().includes(query)) : state.listing;
  const body = $("records").tBodies[0];
  const shown = rows.slice(0, SHOWN_ROWS).map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.index = r.index;
    if (r.index === state.selected) tr.className = "selected";
    for (const text of [r.id, r.patches, r.entities, formatLabels(r.labels), SOURCE_NAMES[r.reportSource] ?? `code ${r.reportSource}`]) {
      tr.appendChild(document.createElement("td")).textContent = String(text);
    }
    return tr;
  });
  body.replaceChildren(...shown);
  const count = $("record-count");
  count.dataset.total = state.listing.length;
  count.dataset.matching = rows.length;
  count.textContent = !state.file ? "" : query
    ? `${rows.length} of ${state.listing.length} records match${rows.length > SHOWN_ROWS ? ` (first ${SHOWN_ROWS} shown)` : ""}`
    : `${state.listing.length} records${rows.length > SHOWN_ROWS ? ` (first ${SHOWN_ROWS} shown; search by ID for the rest)` : ""}`;
}

$("search").addEventListener("input", renderList);
$("records").addEventListener("click", (event) => {
  const tr = event.target.closest("tr[data-index]");
  if (tr) selectRecord(Number(tr.dataset.index));
});

// -- one record --------------------------------------------------------------------------------
async function selectRecord(index) {
  state.selected = index;
  for (const tr of $("records").tBodies[0].rows) tr.classList.toggle("selected", Number(tr.dataset.index) === index);
  const status = $("digest-status");
  status.dataset.state = "pending";
  status.textContent = "verifying…";
  try {
    const rec = await request({ op: "record", index });
    if (state.selected !== index) return;
    state.record = rec;
    renderRecord(rec);
  } catch (err) {
    showError(err);
    status.dataset.state = "error";
    status.textContent = "not read";
  }
}

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function rampColour(t) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (RAMP.length - 1);
  const k = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - k;
  const c = RAMP[k].map((v, j) => Math.round(v + f * (RAMP[k + 1][j] - v)));
  return `rgb(${c.join(",")})`;
}

function kv(table, pairs) {
  table.replaceChildren(...pairs.map(([k, v]) => {
    const tr = document.createElement("tr");
    tr.appendChild(document.createElement("th")).textContent = k;
    tr.appendChild(document.createElement("td")).textContent = v;
    return tr;
  }));
}

function renderRecord(rec) {
  const meta = state.file.meta;
  showError(null);
  $("empty").hidden = true;
  $("record").hidden = false;
  $("record-id").textContent = rec.id;
  const v = rec.verification;
  const status = $("digest-status");
  status.dataset.state = v.ok ? "verified" : "mismatch";
  status.textContent = v.ok ? "✓ digest verified" : "✗ digest mismatch";
  $("digest-computed").textContent = v.ok ? v.computed : `computed ${v.computed}, stored ${v.stored}`;
  $("report-source").textContent = `(${SOURCE_NAMES[rec.reportSource] ?? `unknown code ${rec.reportSource}`})`;
  $("report").textContent = rec.reportSource === 0 ? "no report" : rec.report;
  kv($("labels"), (meta.label_names || []).map((name, k) => [name, Number.isNaN(rec.labels[k]) ? "unknown" : String(rec.labels[k])]));
  const geometry = [["patches kept", `${rec.scores.length} (features ${rec.featureShape.slice(1).join("×") || 0}, ${rec.featureDtype})`]];
  if (rec.imageSize) {
    geometry.push(["image size (px)", rec.imageSize.join(" × ")], ["patch size (px)", rec.patchSize.join(" × ")],
      ["grid", rec.gridShape.join(" × ")],
      ["pixel spacing (mm)", rec.pixelSpacing && !rec.pixelSpacing.every(Number.isNaN) ? rec.pixelSpacing.join(" × ") : "unknown"]);
  }
  geometry.push(["adjacency", meta.adjacency], ["tiles", meta.tile_shape ? `${meta.tile_shape.join("×")} ${meta.tile_dtype}` : "not stored"],
    ["group key", rec.groupKey || "none"]);
  kv($("geometry"), geometry);
  const typeName = (t, names) => (t >= 0 && t < names.length ? names[t] : "not recorded");
  $("entities").tBodies[0].replaceChildren(...Array.from(rec.entityTypes, (t, k) => {
    const tr = document.createElement("tr");
    const a = rec.entityAssertions[k];
    tr.className = a === 1 ? "assert-absent" : a === 2 ? "assert-uncertain" : "";
    for (const text of [k, rec.entityText ? rec.entityText[k] : "", typeName(t, meta.entity_types), ASSERTIONS[a] ?? `code ${a}`]) {
      tr.appendChild(document.createElement("td")).textContent = String(text);
    }
    return tr;
  }));
  const entityLabel = (k) => (rec.entityText ? `${k} ${rec.entityText[k]}` : String(k));
  $("relations").tBodies[0].replaceChildren(...Array.from(rec.relationTypes, (t, k) => {
    const tr = document.createElement("tr");
    for (const text of [entityLabel(rec.relations[2 * k]), typeName(t, meta.relation_types), entityLabel(rec.relations[2 * k + 1])]) {
      tr.appendChild(document.createElement("td")).textContent = text;
    }
    return tr;
  }));
  $("file-version").textContent = `(file format ${state.file.formatVersion})`;
  $("provenance").textContent = JSON.stringify(meta.provenance, null, 2);
  setupSlices(rec);
  drawFigure(rec);
}

// 3-D records: one slice of the grid at a time, starting at the slice holding the bridge patch
function setupSlices(rec) {
  const axes = rec.imageSize ? rec.imageSize.length : 0;
  const control = $("slice-control");
  control.hidden = axes !== 3;
  if (axes !== 3) return;
  const slider = $("slice");
  slider.max = rec.gridShape[0] - 1;
  const bridgePatch = rec.bridge ? rec.bridge[0] : 0;
  state.slice = rec.scores.length ? rec.positions[3 * bridgePatch] : 0;
  slider.value = state.slice;
  $("slice-value").textContent = `${state.slice} (0–${rec.gridShape[0] - 1})`;
}

$("slice").addEventListener("input", () => {
  state.slice = Number($("slice").value);
  $("slice-value").textContent = `${state.slice} (0–${state.record.gridShape[0] - 1})`;
  drawFigure(state.record);
});

function tileImage(rec, k, scoreColour) {
  // one retained patch's pixels as an image (tiles are stored at full resolution)
  const shape = rec.tiles.shape;
  const h = shape[shape.length - 2];
  const w = shape[shape.length - 1];
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const data = rec.tiles.data.subarray(k * per, k * per + h * w); // 3-D tiles: first plane of the patch
  let lo = Infinity;
  let hi = -Infinity;
  if (rec.tiles.dtype === "|u1") { lo = 0; hi = 255; } else {
    for (const value of data) { if (value < lo) lo = value; if (value > hi) hi = value; }
  }
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  for (let p = 0; p < h * w; p++) {
    const g = hi > lo ? Math.round((255 * (data[p] - lo)) / (hi - lo)) : 0;
    image.data.set([g, g, g, 255], 4 * p);
  }
  ctx.putImageData(image, 0, 0);
  return canvas.toDataURL();
}

function drawFigure(rec) {
  const meta = state.file.meta;
  const svg = $("graph");
  const W = 1000;
  const H = 520;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const defs = svg.appendChild(el("defs"));
  const marker = defs.appendChild(el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }));
  marker.appendChild(el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#868e96" }));

  // left: the image extent with the kept patches at their grid positions
  const P = rec.scores.length;
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of rec.scores) { if (s < lo) lo = s; if (s > hi) hi = s; }
  const norm = (s) => (hi > lo ? (s - lo) / (hi - lo) : 1);
  const box = { x: 20, y: 40, w: 460, h: 460 };
  svg.appendChild(el("text", { x: box.x, y: 24, class: "panel-title", "font-size": 15, fill: "#1d2330" }, "Kept image patches (coloured by score)"));
  const centres = [];
  if (rec.imageSize) {
    const axes = rec.imageSize.length;
    const [Hpx, Wpx] = rec.imageSize.slice(axes - 2);
    const [ph, pw] = rec.patchSize.slice(axes - 2);
    const scale = Math.min(box.w / Wpx, box.h / Hpx);
    const ox = box.x + (box.w - Wpx * scale) / 2;
    const oy = box.y + (box.h - Hpx * scale) / 2;
    svg.appendChild(el("rect", { x: ox, y: oy, width: Wpx * scale, height: Hpx * scale, fill: "#212529", stroke: "#495057" }));
    svg.appendChild(el("text", { x: ox, y: oy + Hpx * scale + 14, "font-size": 11, fill: "#5f6b7a" },
      `${Wpx} × ${Hpx} px, grid ${rec.gridShape.slice(axes - 2).reverse().join(" × ")}${axes === 3 ? `, slice ${state.slice}` : ""}`));
    for (let k = 0; k < P; k++) {
      const pos = rec.positions.subarray(k * axes, (k + 1) * axes);
      if (axes === 3 && pos[0] !== state.slice) { centres.push(null); continue; }
      const [r, c] = [pos[axes - 2], pos[axes - 1]];
      const x = ox + c * pw * scale;
      const y = oy + r * ph * scale;
      const w = Math.min(pw, Wpx - c * pw) * scale; // the last row/column is padded at the high end
      const h = Math.min(ph, Hpx - r * ph) * scale;
      const colour = rampColour(norm(rec.scores[k]));
      const g = svg.appendChild(el("g", { class: "patch", "data-patch": k }));
      if (rec.tiles) {
        g.appendChild(el("image", { x, y, width: pw * scale, height: ph * scale, href: tileImage(rec, k), preserveAspectRatio: "none", "clip-path": `inset(0 ${(pw * scale - w)} ${(ph * scale - h)} 0)` }));
        const sw = Math.max(1.5, Math.min(w, h) / 14); // a frame inside the patch, leaving its pixels visible
        g.appendChild(el("rect", { x: x + sw / 2, y: y + sw / 2, width: Math.max(0, w - sw), height: Math.max(0, h - sw), fill: "none", stroke: colour, "stroke-width": sw }));
      } else {
        g.appendChild(el("rect", { x, y, width: w, height: h, fill: colour, stroke: "#212529", "stroke-width": 0.5 }));
      }
      g.appendChild(el("title", {}, `patch ${k} at (${Array.from(pos).join(", ")}), score ${rec.scores[k].toPrecision(4)}`));
      centres.push([x + w / 2, y + h / 2]);
    }
    for (let e = 0; e < rec.edges.length / 2; e++) {
      const a = centres[rec.edges[2 * e]];
      const b = centres[rec.edges[2 * e + 1]];
      if (a && b) svg.appendChild(el("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: "#ffffff", "stroke-opacity": 0.35, "stroke-width": 1 }));
    }
  } else {
    svg.appendChild(el("text", { x: box.x, y: box.y + 20, "font-size": 13, fill: "#5f6b7a" }, `${P} patches, no grid positions stored`));
  }

  // right: the knowledge graph, entities on a circle
  const M = rec.entityTypes.length;
  const kg = { cx: 760, cy: 280, r: M > 1 ? 170 : 0 };
  svg.appendChild(el("text", { x: 560, y: 24, "font-size": 15, fill: "#1d2330" }, "Knowledge graph of the report"));
  const nodes = Array.from({ length: M }, (_, k) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * k) / Math.max(M, 1);
    return [kg.cx + kg.r * Math.cos(angle), kg.cy + kg.r * Math.sin(angle)];
  });
  const names = meta.relation_types || [];
  for (let e = 0; e < rec.relationTypes.length; e++) {
    const a = nodes[rec.relations[2 * e]];
    const b = nodes[rec.relations[2 * e + 1]];
    if (!a || !b) continue;
    if (a === b) { // a relation from an entity to itself: a small loop above the node
      svg.appendChild(el("path", { d: `M ${a[0] - 8} ${a[1] - 12} C ${a[0] - 25} ${a[1] - 45}, ${a[0] + 25} ${a[1] - 45}, ${a[0] + 8} ${a[1] - 12}`, fill: "none", stroke: "#adb5bd", "stroke-width": 1.2, "marker-end": "url(#arrow)", class: "relation" }));
      continue;
    }
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]) || 1;
    const cut = 16 / len; // stop the arrow at the node's rim
    const line = el("line", { x1: a[0], y1: a[1], x2: b[0] - (b[0] - a[0]) * cut, y2: b[1] - (b[1] - a[1]) * cut, stroke: "#adb5bd", "stroke-width": 1.2, "marker-end": "url(#arrow)", class: "relation" });
    svg.appendChild(line);
    const t = rec.relationTypes[e];
    svg.appendChild(el("text", { x: (a[0] + b[0]) / 2, y: (a[1] + b[1]) / 2 - 3, "font-size": 10, fill: "#868e96", "text-anchor": "middle" }, t >= 0 && t < names.length ? names[t] : "?"));
  }
  for (let k = 0; k < M; k++) {
    const [x, y] = nodes[k];
    const a = rec.entityAssertions[k];
    const t = rec.entityTypes[k];
    const g = svg.appendChild(el("g", { class: "entity", "data-entity": k, "data-assertion": ASSERTIONS[a] ?? a }));
    const fill = t >= 0 ? TYPE_COLOURS[t % TYPE_COLOURS.length] : "#adb5bd";
    // absent: hollow with a dashed red rim; uncertain: faded with a dotted orange rim
    const style = a === 1 ? { fill: "#fff", stroke: "#e03131", "stroke-dasharray": "4 3", "stroke-width": 2.5 }
      : a === 2 ? { fill, "fill-opacity": 0.45, stroke: "#f08c00", "stroke-dasharray": "1.5 2.5", "stroke-width": 2.5 }
        : { fill, stroke: "#212529", "stroke-width": 1 };
    g.appendChild(el("circle", { cx: x, cy: y, r: 14, ...style }));
    if (a === 1) g.appendChild(el("line", { x1: x - 9, y1: y + 9, x2: x + 9, y2: y - 9, stroke: "#e03131", "stroke-width": 2 }));
    if (a === 2) g.appendChild(el("text", { x, y: y + 5, "font-size": 14, "font-weight": 700, "text-anchor": "middle", fill: "#e67700" }, "?"));
    const text = rec.entityText ? rec.entityText[k] : `entity ${k}`;
    const short = text.length > 22 ? `${text.slice(0, 21)}…` : text;
    const below = y >= kg.cy;
    g.appendChild(el("text", { x, y: below ? y + 28 : y - 20, "font-size": 12, "text-anchor": "middle", fill: a === 1 ? "#c92a2a" : "#1d2330", "text-decoration": a === 1 ? "line-through" : "none" }, short));
    g.appendChild(el("title", {}, `${text} — ${t >= 0 && t < (meta.entity_types || []).length ? meta.entity_types[t] : "type not recorded"}, ${ASSERTIONS[a] ?? a}`));
  }
  if (!M) svg.appendChild(el("text", { x: 560, y: 60, "font-size": 13, fill: "#5f6b7a" }, "no entities"));

  // the bridge: one edge from the most central patch to the most central entity
  if (rec.bridge && centres[rec.bridge[0]] && nodes[rec.bridge[1]]) {
    const [px, py] = centres[rec.bridge[0]];
    const [ex, ey] = nodes[rec.bridge[1]];
    svg.appendChild(el("path", { d: `M ${px} ${py} C ${px + 160} ${py - 120}, ${ex - 160} ${ey - 60}, ${ex} ${ey}`, fill: "none", stroke: "#e8590c", "stroke-width": 3, "stroke-dasharray": "8 4", class: "bridge" }));
    svg.appendChild(el("circle", { cx: px, cy: py, r: 5, fill: "#e8590c" }));
    // label at the curve's midpoint: (P0 + 3 P1 + 3 P2 + P3) / 8
    const mx = (px + 3 * (px + 160) + 3 * (ex - 160) + ex) / 8;
    const my = (py + 3 * (py - 120) + 3 * (ey - 60) + ey) / 8;
    svg.appendChild(el("text", { x: mx, y: my - 8, "font-size": 12, "font-weight": 600, fill: "#e8590c", "text-anchor": "middle", stroke: "#fff", "stroke-width": 3, "paint-order": "stroke" }, `bridge: patch ${rec.bridge[0]} ↔ entity ${rec.bridge[1]}`));
  } else if (rec.bridge) {
    svg.appendChild(el("text", { x: 560, y: 500, "font-size": 12, fill: "#e8590c" }, `bridge: patch ${rec.bridge[0]} ↔ entity ${rec.bridge[1]} (patch on another slice)`));
  }
  drawLegend(lo, hi);
}

function drawLegend(lo, hi) {
  const meta = state.file.meta;
  const legend = $("legend");
  const item = (...children) => {
    const span = document.createElement("span");
    span.className = "item";
    span.append(...children);
    return span;
  };
  const swatch = (css) => Object.assign(document.createElement("span"), { className: "swatch", style: css });
  const ramp = Object.assign(document.createElement("span"), { className: "ramp" });
  ramp.style.background = `linear-gradient(to right, ${RAMP.map((c) => `rgb(${c.join(",")})`).join(", ")})`;
  const fmt = (v) => (Number.isFinite(v) ? v.toPrecision(3) : "–");
  legend.replaceChildren(
    item(`score ${fmt(lo)}`, ramp, fmt(hi)),
    ...(meta.entity_types || []).map((name, t) => item(swatch(`background:${TYPE_COLOURS[t % TYPE_COLOURS.length]}`), name)),
    item(swatch("border:2px dashed #e03131;background:#fff"), "absent"),
    item(swatch("border:2px dotted #f08c00;background:#ccc"), "uncertain"),
    item(Object.assign(document.createElement("span"), { style: "display:inline-block;width:22px;border-top:3px dashed #e8590c" }), "bridge"),
  );
}

startWorker();
openServed();
