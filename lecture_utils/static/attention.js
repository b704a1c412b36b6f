// Build GPT: the course's attention views, drawn in the browser.
//
// An anywidget ES module written by hand: no dependencies, no bundler, nothing loaded from a network.
// The kernel sends the tensors of one forward pass once; every hover, click, key press and slider move
// below is answered here, without a round trip to Python. Three widgets share this file, chosen by the
// model's `kind`: "explorer" (lecture_utils.viz.AttentionExplorer), "averaging" (AveragingTrickExplorer)
// and "scaled" (ScaledAttentionDemo). The same module drives the standalone page that `.save_html()`
// writes, through a small stand-in for the widget model.

// ----------------------------------------------------------------------------------------------
// colours: viridis (perceptually uniform, readable with the common colour-vision deficiencies),
// sampled at 17 points from matplotlib's table and interpolated linearly
// ----------------------------------------------------------------------------------------------

const VIRIDIS = [
  "440154", "48186a", "472d7b", "424086", "3b528b", "33638d", "2c728e", "26828e", "21918c",
  "1fa088", "28ae80", "3fbc73", "5ec962", "84d44b", "addc30", "d8e219", "fde725",
].map((h) => [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)));
// diverging map for signed values (matplotlib's RdBu reversed: blue negative, red positive)
const DIVERGING = [
  "053061", "2a71b2", "6bacd1", "c2ddec", "f7f6f6", "fbccb4", "e48066", "ba2832", "67001f",
].map((h) => [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)));
// Okabe and Ito's palette: distinguishable with every common colour-vision deficiency
const HEAD_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#F0E442"];
const MASKED = [224, 224, 224];

function ramp(table, t) {
  if (!(t >= 0)) t = 0; // NaN too
  if (t > 1) t = 1;
  const x = t * (table.length - 1);
  const i = Math.min(table.length - 2, Math.floor(x));
  const f = x - i;
  const a = table[i], b = table[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}
const viridis = (t) => ramp(VIRIDIS, t);
const diverging = (v, lim) => ramp(DIVERGING, 0.5 + v / (2 * (lim || 1)));
const css = (rgb, a = 1) => `rgba(${rgb[0] | 0},${rgb[1] | 0},${rgb[2] | 0},${a})`;

// ----------------------------------------------------------------------------------------------
// small helpers
// ----------------------------------------------------------------------------------------------

/** A synced bytes trait (DataView in ipywidgets 7 and 8, base64 text in a saved page) as Float32Array. */
function f32(v) {
  if (v == null) return new Float32Array(0);
  if (typeof v === "string") {
    const bin = atob(v);
    const u8 = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    return new Float32Array(u8.buffer);
  }
  if (v instanceof Float32Array) return v;
  if (v instanceof ArrayBuffer) return new Float32Array(v.slice(0));
  if (ArrayBuffer.isView(v)) return new Float32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  return new Float32Array(0);
}

/** How a character is shown: visible stand-ins for newline, space and tab. */
function label(ch) {
  return ch === "\n" ? "\u21b5" : ch === " " ? "\u2423" : ch === "\t" ? "\u21e5" : ch;
}
const quoted = (ch) => `'${label(ch)}'`;
const fmt = (v, d = 4) => (Number.isFinite(v) ? v.toFixed(d) : String(v));

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

function hidpi(canvas, w, hgt) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(hgt * dpr);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${hgt}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

function softmax(xs) {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  const e = xs.map((x) => (x === -Infinity ? 0 : Math.exp(x - m)));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** A hover tooltip inside `root` (which is position: relative). */
function tooltip(root) {
  const tip = h("div", { class: "bg-tip", role: "presentation" });
  root.append(tip);
  return {
    show(ev, text) {
      const r = root.getBoundingClientRect();
      tip.textContent = text;
      tip.style.display = "block";
      tip.style.left = `${ev.clientX - r.left + 14}px`;
      tip.style.top = `${ev.clientY - r.top + 14}px`;
    },
    hide() {
      tip.style.display = "none";
    },
  };
}

let hatchPattern = null;
function hatch(ctx) {
  if (!hatchPattern) {
    const c = document.createElement("canvas");
    c.width = c.height = 6;
    const x = c.getContext("2d");
    x.fillStyle = css(MASKED);
    x.fillRect(0, 0, 6, 6);
    x.strokeStyle = "#b0b0b0";
    x.lineWidth = 1;
    x.beginPath();
    x.moveTo(0, 6);
    x.lineTo(6, 0);
    x.stroke();
    hatchPattern = c;
  }
  return ctx.createPattern(hatchPattern, "repeat");
}

// ----------------------------------------------------------------------------------------------
// the heatmap: one (T, T) matrix, row = query, column = key, the future hatched grey
// ----------------------------------------------------------------------------------------------

class Heatmap {
  /**
   * opts: maxPx (largest side in CSS pixels), onHover(cell | null, ev), onPick(cell), onKey(ev) -> bool,
   * colour (value -> rgb), causal (hatch the future).
   */
  constructor(opts) {
    this.o = { maxPx: 512, causal: true, colour: viridis, ...opts };
    // data-lm-suppress-shortcuts: JupyterLab and Notebook 7 leave the keys of a focused view to it
    this.canvas = h("canvas", { tabindex: "0", role: "img", class: "bg-heatmap", "data-lm-suppress-shortcuts": "true" });
    this.cache = new Map();
    this.mark = { row: -1, col: -1 };
    this.hover = null;
    this.canvas.addEventListener("mousemove", (ev) => this._move(ev));
    this.canvas.addEventListener("mouseleave", (ev) => {
      this.hover = null;
      this.canvas.dataset.hover = "";
      this.draw();
      this.o.onHover?.(null, ev);
    });
    this.canvas.addEventListener("click", (ev) => {
      const cell = this._cell(ev);
      if (cell) this.o.onPick?.(cell, ev);
    });
    this.canvas.addEventListener("keydown", (ev) => {
      if (this.o.onKey?.(ev)) ev.preventDefault();
    });
    this.canvas.addEventListener("focus", () => this.o.onFocus?.()); // the chosen cell's value, as text
  }

  /** m: Float32Array of T*T (row-major), key: a name for the cached image of this matrix. */
  set(m, T, tokens, key) {
    this.m = m;
    this.T = T;
    this.tokens = tokens;
    this.key = key;
    this.px = Math.max(2, Math.min(28, Math.floor(this.o.maxPx / T)));
    this.labels = this.px >= 10 && tokens;
    this.margin = this.labels ? 18 : 26;
    const side = this.margin + this.px * T + 4;
    this.ctx = hidpi(this.canvas, side, side);
    this.canvas.dataset.px = String(this.px); // the layout, for tests that hover a given cell
    this.canvas.dataset.margin = String(this.margin);
    this.canvas.setAttribute("aria-label",
      `attention weights, ${T} queries by ${T} keys; arrow keys move the query and the key`);
  }

  image() {
    let img = this.cache.get(this.key);
    if (img) return img;
    const { T, m } = this;
    img = document.createElement("canvas");
    img.width = img.height = T;
    const x = img.getContext("2d");
    const data = x.createImageData(T, T);
    for (let i = 0; i < T; i++) {
      for (let j = 0; j < T; j++) {
        const o = (i * T + j) * 4;
        const c = this.o.causal && j > i ? MASKED : this.o.colour(m[i * T + j]);
        data.data[o] = c[0];
        data.data[o + 1] = c[1];
        data.data[o + 2] = c[2];
        data.data[o + 3] = 255;
      }
    }
    x.putImageData(data, 0, 0);
    if (this.cache.size > 64) this.cache.clear();
    this.cache.set(this.key, img);
    return img;
  }

  draw() {
    const { ctx, T, px, margin } = this;
    if (!ctx) return;
    const size = px * T;
    ctx.clearRect(0, 0, margin + size + 4, margin + size + 4);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.image(), margin, margin, size, size);
    if (this.o.causal && T > 1) { // the future: hatched, so it never reads as a small weight
      ctx.save();
      ctx.beginPath();
      for (let i = 0; i < T; i++) { // staircase above the diagonal
        ctx.rect(margin + (i + 1) * px, margin + i * px, (T - i - 1) * px, px);
      }
      ctx.fillStyle = hatch(ctx);
      ctx.fill();
      ctx.restore();
    }
    ctx.fillStyle = "#333";
    ctx.font = `${Math.min(12, Math.max(9, px - 2))}px ui-monospace, monospace`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    if (this.labels) {
      for (let i = 0; i < T; i++) {
        const t = label(this.tokens[i]);
        ctx.fillText(t, margin + i * px + px / 2, margin / 2);
        ctx.fillText(t, margin / 2, margin + i * px + px / 2);
      }
    } else {
      ctx.font = "9px ui-monospace, monospace";
      const step = T > 64 ? 32 : T > 16 ? 8 : 4;
      for (let i = 0; i < T; i += step) {
        ctx.fillText(String(i), margin + i * px + px / 2, margin / 2);
        ctx.save();
        ctx.textAlign = "right";
        ctx.fillText(String(i), margin - 3, margin + i * px + px / 2);
        ctx.restore();
      }
    }
    const box = (i, j, w, colour) => {
      if (i < 0) return;
      ctx.lineWidth = w;
      ctx.strokeStyle = colour;
      if (j < 0) ctx.strokeRect(margin - 1, margin + i * px - 0.5, size + 2, px + 1);
      else ctx.strokeRect(margin + j * px - 0.5, margin + i * px - 0.5, px + 1, px + 1);
    };
    box(this.mark.row, -1, 2, "#e69f00"); // the chosen query's row
    if (this.mark.col >= 0) {
      box(this.mark.row, this.mark.col, 3, "#000");
      box(this.mark.row, this.mark.col, 1, "#fff");
    }
    if (this.hover) {
      box(this.hover.i, this.hover.j, 3, "#fff");
      box(this.hover.i, this.hover.j, 1.5, "#000");
    }
  }

  _cell(ev) {
    const r = this.canvas.getBoundingClientRect();
    const j = Math.floor((ev.clientX - r.left - this.margin) / this.px);
    const i = Math.floor((ev.clientY - r.top - this.margin) / this.px);
    if (i < 0 || j < 0 || i >= this.T || j >= this.T) return null;
    return { i, j, value: this.m[i * this.T + j], masked: this.o.causal && j > i };
  }

  _move(ev) {
    const cell = this._cell(ev);
    const same = cell && this.hover && cell.i === this.hover.i && cell.j === this.hover.j;
    if (same) return this.o.onHover?.(cell, ev, true);
    this.hover = cell;
    this.canvas.dataset.hover = cell ? `${cell.i},${cell.j}` : ""; // the hovered cell, for tests that hover one
    this.draw();
    this.o.onHover?.(cell, ev, false);
  }
}

/** A colour bar from 0 to 1 (or -lim to lim for the diverging map). */
function legend(text, colour = viridis, lo = "0", hi = "1") {
  const c = h("canvas");
  const ctx = hidpi(c, 120, 10);
  for (let x = 0; x < 120; x++) {
    ctx.fillStyle = css(colour(x / 119));
    ctx.fillRect(x, 0, 1, 10);
  }
  const masked = h("span", { class: "bg-swatch", style: `background:${css(MASKED)}` });
  return h("div", { class: "bg-legend" }, h("span", { text }), h("span", { text: lo }), c, h("span", { text: hi }),
    colour === viridis ? masked : null, colour === viridis ? h("span", { text: "masked (the future)" }) : null);
}

/** Horizontal bars on a canvas: items [{name, value}], hover -> onHover(index, ev). */
class Bars {
  constructor({ width = 420, row = 16, max = 1, onHover, onPick, colour }) {
    this.o = { width, row, max, onHover, onPick, colour: colour || (() => "#0072B2") };
    this.canvas = h("canvas", { tabindex: "0", role: "img", "data-lm-suppress-shortcuts": "true" });
    this.canvas.addEventListener("mousemove", (ev) => this.o.onHover?.(this._index(ev), ev));
    this.canvas.addEventListener("mouseleave", (ev) => this.o.onHover?.(-1, ev));
    this.canvas.addEventListener("click", (ev) => {
      const i = this._index(ev);
      if (i >= 0) this.o.onPick?.(i);
    });
  }

  set(items, mark = -1) {
    this.items = items;
    const { width, row } = this.o;
    const ctx = hidpi(this.canvas, width, row * items.length + 4);
    ctx.font = "12px ui-monospace, monospace";
    ctx.textBaseline = "middle";
    const left = 78;
    const lim = Math.max(this.o.max, 1e-9);
    items.forEach((it, i) => {
      const y = i * row + 2;
      ctx.fillStyle = i === mark ? "#fbe3b0" : i % 2 ? "#fafafa" : "#fff";
      ctx.fillRect(0, y, width, row);
      ctx.fillStyle = "#222";
      ctx.textAlign = "left";
      ctx.fillText(it.name, 2, y + row / 2);
      ctx.fillStyle = this.o.colour(it, i);
      const w = Math.max(0, (width - left - 64) * Math.min(1, Math.abs(it.value) / lim));
      ctx.fillRect(left, y + 2, w, row - 4);
      ctx.fillStyle = "#222";
      ctx.fillText(fmt(it.value), left + w + 4, y + row / 2);
    });
  }

  _index(ev) {
    const r = this.canvas.getBoundingClientRect();
    const i = Math.floor((ev.clientY - r.top - 2) / this.o.row);
    return this.items && i >= 0 && i < this.items.length ? i : -1;
  }
}

// ----------------------------------------------------------------------------------------------
// the attention explorer
// ----------------------------------------------------------------------------------------------

const VIEWS = [
  ["heatmap", "Heatmap"], ["head", "Head view"], ["model", "Model view"], ["qk", "Query \u00b7 key"],
  ["next", "Next token"],
];

function explorer(model, root) {
  const off = [];
  const on = (name, fn) => {
    model.on(name, fn);
    off.push(() => model.off(name, fn));
  };
  const standalone = !!model.get("standalone");
  let d = null; // the captured forward pass
  const hover = { query: -1, key: -1 };
  const tip = tooltip(root);

  // --- controls -------------------------------------------------------------------------------
  const text = h("textarea", { "aria-label": "text the model reads", spellcheck: "false" });
  text.value = model.get("text");
  if (standalone) text.disabled = true;
  const message = h("div", { class: "bg-note", "aria-live": "polite" });
  const error = h("div", { class: "bg-error", role: "alert" });
  const tabs = h("div", { class: "bg-row", role: "tablist", "aria-label": "views" });
  const tabButtons = VIEWS.map(([id, name]) => {
    const b = h("button", { role: "tab", "data-view": id, text: name, onclick: () => commit({ view: id }) });
    tabs.append(b);
    return b;
  });
  const layerSel = h("select", { "aria-label": "layer", onchange: () => commit({ layer: +layerSel.value }) });
  const headSel = h("select", { "aria-label": "head", onchange: () => commit({ head: +headSel.value }) });
  const queryOut = h("output", { "aria-live": "polite", class: "bg-query" });
  const step = (dq) => commit({ query: clampQuery(model.get("query") + dq) });
  const controls = h("div", { class: "bg-row" },
    h("label", {}, "layer ", layerSel), h("label", {}, "head ", headSel),
    h("span", {}, "query "),
    h("button", { "aria-label": "previous query position", text: "\u25c0", onclick: () => step(-1) }),
    queryOut,
    h("button", { "aria-label": "next query position", text: "\u25b6", onclick: () => step(1) }));
  const stage = h("div", { class: "bg-stage" });
  const info = h("div", { class: "bg-info", "aria-live": "polite" });
  /** Show these nodes in the stage; a control that had the keyboard focus keeps it. */
  const mount = (...nodes) => {
    const focused = document.activeElement;
    const same = nodes.length === stage.childNodes.length && nodes.every((n, i) => stage.childNodes[i] === n);
    if (!same) stage.replaceChildren(...nodes);
    if (focused && focused !== document.activeElement && stage.contains(focused)) focused.focus({ preventScroll: true });
  };
  root.append(...[
    text, standalone ? h("div", { class: "bg-note", text: "Saved page: the text is fixed (the model runs in Python)." }) : null,
    message, error, tabs, controls, stage, info].filter(Boolean));

  let textTimer = null;
  const sendText = () => {
    clearTimeout(textTimer);
    if (standalone || text.value === model.get("text")) return;
    model.set("text", text.value);
    model.save_changes();
  };
  text.addEventListener("input", () => {
    clearTimeout(textTimer);
    textTimer = setTimeout(sendText, 600);
  });
  text.addEventListener("change", sendText);

  function clampQuery(q) {
    return Math.max(0, Math.min(d.T - 1, q));
  }

  /** Change synced state (the kernel hears of it) and redraw. */
  function commit(change) {
    for (const [k, v] of Object.entries(change)) model.set(k, v);
    model.save_changes();
    redraw();
  }

  function load() {
    const tokens = model.get("tokens");
    const T = tokens.length;
    const L = model.get("n_layer"), H = model.get("n_head"), hs = model.get("head_size");
    d = {
      tokens, T, L, H, hs, W: f32(model.get("weights_f32")), Q: f32(model.get("q_f32")), K: f32(model.get("k_f32")),
      logits: f32(model.get("logits_f32")), vocab: model.get("vocab"), unit: model.get("unit") || "character",
    };
    d.V = d.vocab.length;
    d.revision = model.get("revision");
    d.hasQK = d.Q.length === L * H * T * hs && hs > 0;
    layerSel.replaceChildren(...Array.from({ length: L }, (_, i) => h("option", { value: String(i), text: String(i) })));
    headSel.replaceChildren(...Array.from({ length: H }, (_, i) => h("option", { value: String(i), text: String(i) })));
    heatmap.cache.clear();
    thumbs = null;
    if (text.value !== model.get("text") && document.activeElement !== text) text.value = model.get("text");
  }

  const matrix = (l, hd) => d.W.subarray((l * d.H + hd) * d.T * d.T, (l * d.H + hd + 1) * d.T * d.T);
  const weight = (l, hd, i, j) => d.W[((l * d.H + hd) * d.T + i) * d.T + j];

  function say(s, ev) {
    info.textContent = s;
    if (ev) tip.show(ev, s);
    else tip.hide();
  }

  function describeCell(l, hd, i, j) {
    const t = d.tokens;
    if (j > i) return `layer ${l} head ${hd}: query ${i} ${quoted(t[i])} \u2192 key ${j} ${quoted(t[j])}: masked (the future)`;
    return `layer ${l} head ${hd}: query ${i} ${quoted(t[i])} \u2192 key ${j} ${quoted(t[j])}: ${fmt(weight(l, hd, i, j))}`;
  }

  // keyboard: the query position everywhere (up/down, home/end, page up/down), the key (left/right)
  function onKey(ev) {
    const q = model.get("query"), k = model.get("key");
    const moves = { ArrowUp: -1, ArrowDown: 1, PageUp: -10, PageDown: 10 };
    if (ev.key in moves) commit({ query: clampQuery(q + moves[ev.key]), key: Math.min(k, clampQuery(q + moves[ev.key])) });
    else if (ev.key === "Home") commit({ query: 0, key: 0 });
    else if (ev.key === "End") commit({ query: d.T - 1 });
    else if (ev.key === "ArrowLeft") commit({ key: Math.max(0, k - 1) });
    else if (ev.key === "ArrowRight") commit({ key: Math.min(q, k + 1) });
    else return false;
    const l = model.get("layer"), hd = model.get("head");
    say(describeCell(l, hd, model.get("query"), model.get("key")));
    return true;
  }

  // --- heatmap view ---------------------------------------------------------------------------
  const heatmap = new Heatmap({
    maxPx: 512,
    onHover(cell, ev) {
      if (!cell) return tip.hide();
      say(describeCell(model.get("layer"), model.get("head"), cell.i, cell.j), ev);
      info.dataset.query = cell.i;
      info.dataset.key = cell.j;
      info.dataset.value = cell.masked ? "masked" : String(cell.value);
    },
    onPick(cell, ev) {
      commit({ query: cell.i, key: Math.min(cell.i, cell.j) });
      // the first click also focuses the canvas, whose readout named the cell chosen before: name the new one
      say(describeCell(model.get("layer"), model.get("head"), model.get("query"), model.get("key")), ev);
    },
    onKey,
    onFocus: () => say(describeCell(model.get("layer"), model.get("head"), model.get("query"), model.get("key"))),
  });
  const heatmapPanel = h("div", {}, heatmap.canvas, legend("weight"));

  function drawHeatmap() {
    const l = model.get("layer"), hd = model.get("head");
    heatmap.set(matrix(l, hd), d.T, d.tokens, `${model.get("revision")}:${l}:${hd}`);
    heatmap.mark = { row: model.get("query"), col: model.get("key") };
    heatmap.draw();
    mount(heatmapPanel);
  }

  // --- head view: queries on the left, keys on the right, a line per (head, key) --------------
  const headCanvas = h("canvas", { tabindex: "0", role: "img", "data-lm-suppress-shortcuts": "true", "aria-label": "head view: lines from the query to the keys it attends to; arrow keys move the query" });
  const headChips = h("div", { class: "bg-row" });
  const headScroll = h("div", { class: "bg-scroll" }, headCanvas); // the token columns scroll, the chips stay
  const headPanel = h("div", {}, headChips, headScroll);
  let headScrolledTo = -1;
  const headNote = h("div", { class: "bg-note" });
  const HV = { row: 14, left: 40, right: 300, width: 360 };
  headCanvas.addEventListener("keydown", (ev) => {
    if (onKey(ev)) ev.preventDefault();
  });
  headCanvas.addEventListener("mousemove", (ev) => {
    const r = headCanvas.getBoundingClientRect();
    const x = ev.clientX - r.left, i = Math.floor((ev.clientY - r.top - 4) / HV.row);
    if (i < 0 || i >= d.T) return;
    if (x < HV.width / 2) {
      if (hover.query !== i) {
        hover.query = i;
        hover.key = -1;
        drawHead();
      }
      say(`query ${i} ${quoted(d.tokens[i])} (click to keep it)`, ev);
    } else {
      if (hover.key !== i) {
        hover.key = i;
        drawHead();
      }
      const q = hover.query >= 0 ? hover.query : model.get("query");
      const parts = shownHeads().map((hd) => `head ${hd} ${i > q ? "masked" : fmt(weight(model.get("layer"), hd, q, i))}`);
      say(`layer ${model.get("layer")}: query ${q} ${quoted(d.tokens[q])} \u2192 key ${i} ${quoted(d.tokens[i])}: ${parts.join(", ")}`, ev);
      info.dataset.query = q;
      info.dataset.key = i;
      info.dataset.value = i > q ? "masked" : String(weight(model.get("layer"), shownHeads()[0], q, i));
    }
  });
  headCanvas.addEventListener("mouseleave", () => {
    hover.query = hover.key = -1;
    tip.hide();
    drawHead();
  });
  headCanvas.addEventListener("click", (ev) => {
    const r = headCanvas.getBoundingClientRect();
    const i = Math.floor((ev.clientY - r.top - 4) / HV.row);
    if (i >= 0 && i < d.T && ev.clientX - r.left < HV.width / 2) commit({ query: i, key: Math.min(model.get("key"), i) });
  });

  function shownHeads() {
    const hs = (model.get("heads_shown") || []).filter((x) => x >= 0 && x < d.H);
    return hs.length ? hs : [model.get("head")];
  }

  function drawHeadChips() {
    const shown = new Set(shownHeads());
    headChips.replaceChildren(h("span", { text: "heads shown:" }), ...Array.from({ length: d.H }, (_, hd) => {
      const b = h("button", {
        class: "bg-chip", "aria-pressed": String(shown.has(hd)), "data-head": String(hd),
        onclick: () => {
          const s = new Set(shownHeads());
          if (s.has(hd) && s.size > 1) s.delete(hd);
          else s.add(hd);
          commit({ heads_shown: [...s].sort((a, b) => a - b) });
        },
      }, h("span", { class: "bg-swatch", style: `background:${HEAD_COLOURS[hd % HEAD_COLOURS.length]}` }), `head ${hd}`);
      return b;
    }), h("button", { text: "all", onclick: () => commit({ heads_shown: Array.from({ length: d.H }, (_, i) => i) }) }));
  }

  function drawHead() {
    const { T, tokens } = d;
    const ctx = hidpi(headCanvas, HV.width, T * HV.row + 8);
    const l = model.get("layer");
    const q = hover.query >= 0 ? hover.query : model.get("query");
    const heads = shownHeads();
    ctx.font = "12px ui-monospace, monospace";
    ctx.textBaseline = "middle";
    const y = (i) => 4 + i * HV.row + HV.row / 2;
    // lines first, under the tokens
    ctx.lineWidth = 2;
    for (const hd of heads) {
      ctx.strokeStyle = HEAD_COLOURS[hd % HEAD_COLOURS.length];
      for (let j = 0; j <= q; j++) {
        const w = weight(l, hd, q, j);
        if (w < 0.005) continue;
        ctx.globalAlpha = Math.min(1, w);
        ctx.beginPath();
        ctx.moveTo(HV.left + 14, y(q));
        ctx.lineTo(HV.right - 4, y(j));
        ctx.stroke();
      }
    }
    ctx.globalAlpha = 1;
    const one = heads.length === 1 ? heads[0] : -1;
    for (let i = 0; i < T; i++) {
      if (i === q) {
        ctx.fillStyle = "#fbe3b0";
        ctx.fillRect(0, y(i) - HV.row / 2, HV.left + 14, HV.row);
      }
      if (i <= q && one >= 0) { // one head: the key's weight as a swatch in the heatmap's colours
        ctx.fillStyle = css(viridis(weight(l, one, q, i)));
        ctx.fillRect(HV.right + 18, y(i) - HV.row / 2 + 2, 22, HV.row - 4);
      }
      if (i === hover.key) {
        ctx.strokeStyle = "#000";
        ctx.strokeRect(HV.right - 2, y(i) - HV.row / 2 + 1, 18, HV.row - 2);
      }
      ctx.fillStyle = i > q ? "#aaa" : "#111";
      ctx.textAlign = "right";
      ctx.fillText(String(i), 22, y(i));
      ctx.textAlign = "center";
      ctx.fillText(label(tokens[i]), HV.left + 6, y(i));
      ctx.fillStyle = i > q ? "#bbb" : "#111";
      ctx.fillText(label(tokens[i]), HV.right + 7, y(i));
    }
    ctx.fillStyle = "#555";
    ctx.textAlign = "left";
  }

  function showHead() {
    drawHeadChips();
    drawHead();
    headNote.textContent = `layer ${model.get("layer")}: hover a query (left) to see where it looks, a key (right) to read the weights`;
    mount(headNote, headPanel);
    // keep the chosen query in sight in a long text
    const q = model.get("query");
    if (q !== headScrolledTo) { // only when the chosen query moves: a click on a chip keeps the place
      headScrolledTo = q;
      const y = 4 + q * HV.row;
      if (y < headScroll.scrollTop || y > headScroll.scrollTop + headScroll.clientHeight - HV.row) {
        headScroll.scrollTop = Math.max(0, y - headScroll.clientHeight / 2);
      }
    }
  }

  // --- model view: every layer x head as a thumbnail -----------------------------------------
  let thumbs = null;
  function showModel() {
    const { L, H, T } = d;
    const side = Math.max(48, Math.min(128, Math.floor(600 / Math.max(H, 1)) - 12));
    if (!thumbs) {
      thumbs = [];
      const grid = h("div", { class: "bg-grid", style: `grid-template-columns: repeat(${H}, ${side + 8}px)` });
      for (let l = 0; l < L; l++) {
        for (let hd = 0; hd < H; hd++) {
          const c = h("canvas", { role: "presentation" });
          const b = h("button", {
            "aria-label": `layer ${l} head ${hd}: open in the heatmap`, "data-layer": String(l), "data-head": String(hd),
            onclick: () => commit({ layer: l, head: hd, view: "heatmap" }),
            onmousemove: (ev) => {
              const q = model.get("query");
              let best = 0;
              for (let j = 1; j <= q; j++) if (weight(l, hd, q, j) > weight(l, hd, q, best)) best = j;
              say(`layer ${l} head ${hd}: query ${q} ${quoted(d.tokens[q])} looks most at key ${best} ${quoted(d.tokens[best])} (${fmt(weight(l, hd, q, best))}); click to open`, ev);
            },
            onmouseleave: () => tip.hide(),
            onfocus: () => say(`layer ${l} head ${hd}: press Enter to open it in the heatmap`),
          }, c, h("span", { text: `L${l} H${hd}` }));
          thumbs.push({ c, b, l, hd });
          grid.append(b);
        }
      }
      thumbs.grid = grid;
    }
    const q = model.get("query");
    for (const t of thumbs) {
      const ctx = hidpi(t.c, side, side);
      heatmap.set(matrix(t.l, t.hd), T, d.tokens, `${model.get("revision")}:${t.l}:${t.hd}`);
      ctx.imageSmoothingEnabled = T > side;
      ctx.drawImage(heatmap.image(), 0, 0, side, side);
      ctx.strokeStyle = "#e69f00";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(0, (q / T) * side, side, Math.max(1.5, side / T));
      t.b.setAttribute("aria-pressed", String(t.l === model.get("layer") && t.hd === model.get("head")));
    }
    mount(h("div", { class: "bg-note", text: `rows: layers 0..${L - 1}; columns: heads 0..${H - 1}; the orange line marks query ${q}` }), thumbs.grid, legend("weight"));
  }

  // --- query-key view: how one weight is made ------------------------------------------------
  const qkBars = new Canvas2("bg-qk");
  const rowBars = new Bars({
    width: 460, row: 15, max: 1,
    onHover(i, ev) {
      if (i < 0) return tip.hide();
      const j = rowBars.items[i].pos;
      const r = qkRow(model.get("layer"), model.get("head"), model.get("query"));
      say(`key ${j} ${quoted(d.tokens[j])}: score ${fmt(r.scores[j])}, weight ${fmt(r.weights[j])}`, ev);
    },
    onPick: (i) => commit({ key: rowBars.items[i].pos }),
  });
  const ROW_KEYS = 16; // a longer row lists its largest weights and the chosen key, in text order
  rowBars.canvas.setAttribute("aria-label", "the softmax weights of the chosen query over its keys; left/right choose the key");
  rowBars.canvas.addEventListener("keydown", (ev) => {
    if (onKey(ev)) ev.preventDefault();
  });

  function qkVectors(l, hd, i) {
    const o = ((l * d.H + hd) * d.T + i) * d.hs;
    return [d.Q.subarray(o, o + d.hs), d.K.subarray(o, o + d.hs)];
  }
  function qkRow(l, hd, q) {
    const [qv] = qkVectors(l, hd, q);
    const scores = [];
    for (let j = 0; j <= q; j++) {
      const kv = qkVectors(l, hd, j)[1];
      let s = 0;
      for (let c = 0; c < d.hs; c++) s += qv[c] * kv[c];
      scores.push(s / Math.sqrt(d.hs));
    }
    return { scores, weights: softmax(scores) };
  }

  function showQK() {
    if (!d.hasQK) {
      mount(h("div", { class: "bg-note", text: model.get("qk_note") || "the queries and keys of this model were not captured" }));
      return;
    }
    const l = model.get("layer"), hd = model.get("head"), q = model.get("query");
    const k = Math.min(model.get("key"), q);
    const [qv] = qkVectors(l, hd, q);
    const kv = qkVectors(l, hd, k)[1];
    const prods = Array.from(qv, (x, c) => x * kv[c]);
    const dot = prods.reduce((a, b) => a + b, 0);
    const r = qkRow(l, hd, q);
    const lim = Math.max(1e-6, ...prods.map(Math.abs));
    qkBars.bars(prods, lim, (c, ev) => {
      if (c < 0) return tip.hide();
      say(`dimension ${c}: q ${fmt(qv[c])} \u00d7 k ${fmt(kv[c])} = ${fmt(prods[c])}`, ev);
    });
    const stored = weight(l, hd, q, k);
    const formula = h("div", { class: "bg-formula" },
      `layer ${l}, head ${hd}: query ${q} ${quoted(d.tokens[q])}, key ${k} ${quoted(d.tokens[k])}, head_size ${d.hs}\n`,
      `q \u00b7 k = \u03a3 q_i k_i over ${d.hs} dimensions = ${fmt(dot)}\n`,
      `scaled: ${fmt(dot)} / \u221a${d.hs} = ${fmt(dot)} / ${fmt(Math.sqrt(d.hs), 3)} = ${fmt(r.scores[k])}\n`,
      `softmax over keys 0..${q}: e^${fmt(r.scores[k], 3)} / \u03a3_j e^score_j = `, h("b", { class: "bg-qk-weight", text: fmt(r.weights[k]) }),
      `   (the heatmap's cell: ${fmt(stored)})`);
    let keys = r.weights.map((w, j) => j);
    if (keys.length > ROW_KEYS) {
      const top = new Set([...keys].sort((a, b) => r.weights[b] - r.weights[a]).slice(0, ROW_KEYS - 1));
      top.add(k);
      keys = keys.filter((j) => top.has(j));
    }
    rowBars.o.colour = (it) => (it.pos === k ? "#D55E00" : "#0072B2");
    rowBars.set(keys.map((j) => ({ pos: j, name: `${String(j).padStart(3)} ${label(d.tokens[j])}`, value: r.weights[j] })),
      keys.indexOf(k));
    mount(
      h("div", { class: "bg-note", text: "each bar: one dimension's product q_i \u00b7 k_i (red adds to the score, blue takes away); left/right keys choose the key" }),
      qkBars.canvas, legend("q_i k_i", (t) => diverging(2 * t - 1, 1), fmt(-lim, 2), fmt(lim, 2)), formula,
      h("div", { class: "bg-note", text: q + 1 > ROW_KEYS
        ? `the query's ${ROW_KEYS - 1} largest weights of ${q + 1}, and the chosen key (click one to decompose it):`
        : "the query's weights over its keys (click one to decompose it):" }), rowBars.canvas);
  }

  // --- next-token view -----------------------------------------------------------------------
  const temp = h("input", { type: "range", min: "0.1", max: "3", step: "0.05", "aria-label": "temperature" });
  const tempOut = h("output");
  const topk = h("input", { type: "number", min: "0", step: "1", style: "width:5em", "aria-label": "top-k (0: all)" });
  const topp = h("input", { type: "range", min: "0.01", max: "1", step: "0.01", "aria-label": "top-p (1: all)" });
  const toppOut = h("output");
  const sampleBtn = h("button", { text: "sample" });
  const sampled = h("span", { class: "bg-sampled", "aria-live": "polite" });
  const nextBars = new Bars({
    width: 460, row: 16, max: 1,
    onHover(i, ev) {
      if (i < 0 || !lastNext) return tip.hide();
      const it = lastNext[i];
      if (it.kept) say(`${quoted(it.ch)}: probability ${fmt(it.value)}`, ev);
      else say(`${quoted(it.ch)}: cut by top-p (probability before the cut ${fmt(it.value)}), now 0`, ev);
      info.dataset.value = String(it.kept ? it.value : 0);
    },
  });
  nextBars.canvas.setAttribute("aria-label", "the next character's (or token's) distribution; up/down move the query");
  nextBars.canvas.addEventListener("keydown", (ev) => {
    if (onKey(ev)) ev.preventDefault();
  });
  let lastNext = null;
  temp.addEventListener("input", () => {
    model.set("temperature", +temp.value);
    showNext();
  });
  temp.addEventListener("change", () => model.save_changes());
  topk.addEventListener("input", () => {
    const v = Math.max(0, Math.min(d.V, Math.round(+topk.value || 0)));
    model.set("top_k", v);
    model.save_changes();
    showNext();
  });
  topp.addEventListener("input", () => {
    model.set("top_p", Math.max(0.01, Math.min(1, +topp.value)));
    showNext();
  });
  topp.addEventListener("change", () => model.save_changes());
  sampleBtn.addEventListener("click", () => {
    const p = distribution();
    let u = Math.random(), c = 0;
    for (; c < p.length - 1; c++) {
      u -= p[c];
      if (u < 0) break;
    }
    while (p[c] === 0 && c > 0) c--; // rounding at the end of the list
    model.set("last_sample", d.vocab[c]);
    model.save_changes();
    sampled.textContent = `sampled ${quoted(d.vocab[c])} (probability ${fmt(p[c])})`;
  });

  /** The query's next-character distribution: chapter 13's rules in their order (temperature, top-k,
   * top-p), each as lecture_utils.generation computes it; `nucleus: false` stops before the top-p cut. */
  function distribution({ nucleus = true } = {}) {
    const q = model.get("query"), t = model.get("temperature"), k = model.get("top_k"), p = model.get("top_p");
    let row = Array.from(d.logits.subarray(q * d.V, (q + 1) * d.V), (x) => x / t);
    if (k > 0 && k < d.V) { // top_k_logits: keep the k largest and any tied with the k-th
      const kth = [...row].sort((a, b) => b - a)[k - 1];
      for (let i = 0; i < row.length; i++) if (row[i] < kth) row[i] = -Infinity;
    }
    if (nucleus) row = topPLogits(row, p);
    return softmax(row);
  }

  /** generation.top_p_logits: keep the most likely characters, in order, while the probability of those
   * ranked above them is still below p; a character tied with the last one kept is kept too; p = 1 keeps all. */
  function topPLogits(row, p) {
    if (!(p < 1)) return row;
    const probs = softmax(row);
    const sorted = [...probs].sort((a, b) => b - a);
    let nKeep = 0, massBefore = 0;
    for (const x of sorted) {
      if (!(massBefore < p)) break; // the mass before only grows: nothing further down is kept
      nKeep += 1;
      massBefore += x;
    }
    const smallestKept = sorted[Math.max(nKeep, 1) - 1];
    return row.map((x, i) => (probs[i] < smallestKept ? -Infinity : x));
  }

  function showNext() {
    const q = model.get("query"), topP = model.get("top_p");
    const p = distribution();
    const before = distribution({ nucleus: false }); // the order, and the grey bars of the characters cut
    const kept = p.map((v) => v > 0);
    const order = before.map((v, i) => i).sort((a, b) => before[b] - before[a]).slice(0, 20);
    lastNext = order.map((i) => ({ ch: d.vocab[i], value: kept[i] ? p[i] : before[i], kept: kept[i],
      name: `${quoted(d.vocab[i])}${kept[i] ? "" : " \u2715"}` }));
    const truth = q + 1 < d.T ? d.tokens[q + 1] : null;
    nextBars.o.colour = (it) => (!it.kept ? "#bbbbbb" : it.ch === truth ? "#D55E00" : "#0072B2");
    nextBars.set(lastNext);
    nextBars.canvas.dataset.probs = p.join(","); // what is drawn, every character: for tests and readers
    nextBars.canvas.dataset.kept = String(kept.filter(Boolean).length);
    temp.value = String(model.get("temperature"));
    tempOut.textContent = fmt(model.get("temperature"), 2);
    topk.value = String(model.get("top_k"));
    topk.max = String(d.V);
    topp.value = String(topP);
    toppOut.textContent = fmt(topP, 2);
    const ti = truth == null ? -1 : d.vocab.indexOf(truth);
    let nucleus = "";
    if (topP < 1) {
      const mass = before.reduce((s, v, i) => s + (kept[i] ? v : 0), 0);
      const n = kept.filter(Boolean).length;
      const keeps = n === 1 ? `most likely ${d.unit}` : `${n} most likely ${d.unit}s`;
      nucleus = `\ntop-p ${fmt(topP, 2)}: the nucleus keeps the ${keeps} (${fmt(mass, 3)} of the probability) ` +
        `and divides each by ${fmt(mass, 3)}; grey \u2715: cut (shown with its probability before the cut)`;
    }
    mount(
      h("div", { class: "bg-formula" }, `after ${q + 1} ${d.unit}s (up to position ${q}, ${quoted(d.tokens[q])}): the next ${d.unit}`,
        truth == null ? "" : `\nin the text it is ${quoted(truth)} (red), probability ${fmt(p[ti])}`, nucleus),
      h("div", { class: "bg-row" }, h("label", {}, "temperature ", temp), tempOut, h("label", {}, "top-k (0: all) ", topk),
        h("label", {}, "top-p (1: all) ", topp), toppOut, sampleBtn, sampled),
      nextBars.canvas);
  }

  // --- one redraw for every change ------------------------------------------------------------
  function redraw() {
    if (!d) return;
    if (d.revision !== model.get("revision")) load(); // a new text: its tensors first, then the positions
    const t0 = performance.now();
    const view = model.get("view");
    tabButtons.forEach((b) => b.setAttribute("aria-selected", String(b.dataset.view === view)));
    layerSel.value = String(model.get("layer"));
    headSel.value = String(model.get("head"));
    const q = model.get("query");
    queryOut.textContent = `${q} ${quoted(d.tokens[q] ?? "")} of 0..${d.T - 1}`;
    message.textContent = model.get("message");
    error.textContent = model.get("error");
    if (view === "head") showHead();
    else if (view === "model") showModel();
    else if (view === "qk") showQK();
    else if (view === "next") showNext();
    else drawHeatmap();
    root.dataset.view = view;
    root.dataset.drawMs = (performance.now() - t0).toFixed(2);
  }

  load();
  redraw();
  on("change:revision", () => {
    load();
    redraw();
  });
  for (const name of ["layer", "head", "query", "key", "view", "heads_shown", "temperature", "top_k", "top_p", "message",
    "error"]) {
    on(`change:${name}`, redraw);
  }
  return () => off.forEach((f) => f());
}

/** A canvas of signed vertical bars (the query-key products), hover -> callback(index, ev). */
function Canvas2(cls) {
  this.canvas = h("canvas", { class: cls, role: "img", "aria-label": "products of the query and key, per dimension" });
  let hoverFn = null, n = 0, w = 0;
  this.canvas.addEventListener("mousemove", (ev) => {
    const r = this.canvas.getBoundingClientRect();
    const c = Math.floor((ev.clientX - r.left) / w);
    hoverFn?.(c >= 0 && c < n ? c : -1, ev);
  });
  this.canvas.addEventListener("mouseleave", (ev) => hoverFn?.(-1, ev));
  this.bars = (values, lim, onHover) => {
    hoverFn = onHover;
    n = values.length;
    w = Math.max(2, Math.min(16, Math.floor(512 / n)));
    const H = 120;
    const ctx = hidpi(this.canvas, w * n, H);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w * n, H);
    values.forEach((v, c) => {
      ctx.fillStyle = css(diverging(v, lim));
      const bh = (Math.abs(v) / lim) * (H / 2 - 2);
      ctx.fillRect(c * w, v >= 0 ? H / 2 - bh : H / 2, Math.max(1, w - 1), bh);
    });
    ctx.strokeStyle = "#444";
    ctx.beginPath();
    ctx.moveTo(0, H / 2);
    ctx.lineTo(w * n, H / 2);
    ctx.stroke();
  };
}

// ----------------------------------------------------------------------------------------------
// chapter 03: the averaging trick
// ----------------------------------------------------------------------------------------------

const FORMULAS = {
  v1: "for t: xbow[t] = x[:t+1].mean(0)",
  v2: "wei = tril / tril.sum(1); xbow = wei @ x",
  v3: "wei = zeros.masked_fill(tril == 0, -inf).softmax(-1); xbow = wei @ x",
};

/** The (T, T) weights of one version, built the way that version builds them. */
function averagingWeights(version, T) {
  const w = new Float32Array(T * T);
  for (let i = 0; i < T; i++) {
    if (version === "v1") { // the loop: position t averages x[0..t]
      for (let j = 0; j <= i; j++) w[i * T + j] = 1 / (i + 1);
    } else if (version === "v2") { // normalised rows of a lower-triangular matrix of ones
      let s = 0;
      for (let j = 0; j <= i; j++) s += 1;
      for (let j = 0; j <= i; j++) w[i * T + j] = 1 / s;
    } else { // softmax of zeros with the future at -inf
      const row = Array.from({ length: T }, (_, j) => (j <= i ? 0 : -Infinity));
      softmax(row).forEach((v, j) => { w[i * T + j] = v; });
    }
  }
  return w;
}

function averaging(model, root) {
  const off = [];
  const tip = tooltip(root);
  const versions = ["v1", "v2", "v3"].map((v) => h("button", { text: v, "data-version": v, onclick: () => set({ version: v }) }));
  const tSlider = h("input", { type: "range", min: "1", max: String(model.get("max_T")), step: "1", "aria-label": "T" });
  const tOut = h("output");
  tSlider.addEventListener("input", () => set({ T: +tSlider.value }));
  const formula = h("div", { class: "bg-formula" });
  const info = h("div", { class: "bg-info", "aria-live": "polite" });
  const heat = new Heatmap({
    maxPx: 300,
    onHover(cell, ev) {
      if (!cell) return tip.hide();
      const s = cell.masked ? `row ${cell.i}, column ${cell.j}: masked (the future)` : `row ${cell.i}, column ${cell.j}: ${fmt(cell.value)}`;
      info.textContent = s;
      info.dataset.value = cell.masked ? "masked" : String(cell.value);
      tip.show(ev, s);
    },
    onKey: () => false,
  });
  const xMap = { canvas: h("canvas", { role: "img", "aria-label": "x: T rows of C channels" }) };
  const bMap = { canvas: h("canvas", { role: "img", "aria-label": "xbow: T rows of C channels" }) };
  const panels = h("div", { class: "bg-panels" },
    h("figure", {}, h("figcaption", { text: "wei (row t averages x[0..t])" }), heat.canvas, legend("weight")),
    h("figure", {}, h("figcaption", { text: "x" }), xMap.canvas),
    h("figure", {}, h("figcaption", { text: "xbow = wei @ x" }), bMap.canvas, legend("value", (t) => diverging(2 * t - 1, 1), "-2.5", "2.5")));
  root.append(h("div", { class: "bg-row" }, h("span", { text: "version" }), ...versions, h("label", {}, " T ", tSlider), tOut),
    formula, panels, info);

  function set(change) {
    for (const [k, v] of Object.entries(change)) model.set(k, v);
    model.save_changes();
    redraw();
  }

  // a (T, C) matrix shown as rows of C squares: hovering reads the value
  function columns(mapObj, values, T, C, name) {
    const px = Math.max(8, Math.min(24, Math.floor(160 / T)));
    const ctx = hidpi(mapObj.canvas, C * px + 4, T * px + 4);
    for (let i = 0; i < T; i++) {
      for (let c = 0; c < C; c++) {
        ctx.fillStyle = css(diverging(values[i * C + c], 2.5));
        ctx.fillRect(2 + c * px, 2 + i * px, px - 1, px - 1);
      }
    }
    mapObj.canvas.onmousemove = (ev) => {
      const r = mapObj.canvas.getBoundingClientRect();
      const c = Math.floor((ev.clientX - r.left - 2) / px), i = Math.floor((ev.clientY - r.top - 2) / px);
      if (i < 0 || i >= T || c < 0 || c >= C) return tip.hide();
      const s = `${name}[${i}, ${c}] = ${fmt(values[i * C + c])}`;
      info.textContent = s;
      tip.show(ev, s);
    };
  }

  function redraw() {
    const t0 = performance.now();
    const version = model.get("version"), T = model.get("T"), C = model.get("C");
    versions.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.version === version)));
    tSlider.value = String(T);
    tOut.textContent = String(T);
    formula.textContent = FORMULAS[version] ?? "";
    const wei = averagingWeights(version, T);
    heat.set(wei, T, Array.from({ length: T }, (_, i) => String(i % 10)), `${version}:${T}`);
    heat.draw();
    const x = f32(model.get("x_f32")).subarray(0, T * C);
    const xbow = new Float32Array(T * C);
    for (let i = 0; i < T; i++) for (let c = 0; c < C; c++) {
      let s = 0;
      for (let j = 0; j < T; j++) s += wei[i * T + j] * x[j * C + c];
      xbow[i * C + c] = s;
    }
    columns(xMap, x, T, C, "x");
    columns(bMap, xbow, T, C, "xbow");
    root.dataset.drawMs = (performance.now() - t0).toFixed(2);
    root.dataset.version = version;
  }
  redraw();
  for (const name of ["version", "T"]) {
    model.on(`change:${name}`, redraw);
    off.push(() => model.off(`change:${name}`, redraw));
  }
  return () => off.forEach((f) => f());
}

// ----------------------------------------------------------------------------------------------
// chapter 04: why the scores are divided by sqrt(head_size)
// ----------------------------------------------------------------------------------------------

function scaled(model, root) {
  const off = [];
  const tip = tooltip(root);
  const T = model.get("T"), maxHs = model.get("max_head_size");
  const slider = h("input", { type: "range", min: "1", max: String(maxHs), step: "1", "aria-label": "head_size" });
  const hsOut = h("output");
  const box = h("input", { type: "checkbox", "aria-label": "divide by sqrt(head_size)" });
  slider.addEventListener("input", () => set({ head_size: +slider.value }));
  box.addEventListener("change", () => set({ scaled: box.checked }));
  const stats = h("div", { class: "bg-formula" });
  const info = h("div", { class: "bg-info", "aria-live": "polite" });
  const heat = new Heatmap({
    maxPx: 280,
    onHover(cell, ev) {
      if (!cell) return tip.hide();
      const s = cell.masked ? `query ${cell.i}, key ${cell.j}: masked (the future)` : `query ${cell.i}, key ${cell.j}: ${fmt(cell.value)}`;
      info.textContent = s;
      info.dataset.value = cell.masked ? "masked" : String(cell.value);
      tip.show(ev, s);
    },
    onKey: () => false,
  });
  const bars = new Bars({
    width: 320, row: 18, max: 1,
    onHover(i, ev) {
      if (i < 0) return tip.hide();
      const s = `last query \u2192 key ${i}: ${fmt(bars.items[i].value)}`;
      info.textContent = s;
      tip.show(ev, s);
    },
  });
  root.append(h("div", { class: "bg-row" }, h("label", {}, "head_size ", slider), hsOut,
    h("label", {}, box, " divide by \u221ahead_size")), stats,
  h("div", { class: "bg-panels" },
    h("figure", {}, h("figcaption", { text: "attention weights of one sequence" }), heat.canvas, legend("weight")),
    h("figure", {}, h("figcaption", { text: "the last query's weights over the keys" }), bars.canvas)), info);

  const W = f32(model.get("weights_f32")), V = f32(model.get("variance_f32")), M = f32(model.get("last_row_max_f32"));
  function set(change) {
    for (const [k, v] of Object.entries(change)) model.set(k, v);
    model.save_changes();
    redraw();
  }
  function redraw() {
    const t0 = performance.now();
    const hs = model.get("head_size"), sc = model.get("scaled");
    slider.value = String(hs);
    hsOut.textContent = String(hs);
    box.checked = sc;
    const o = ((hs - 1) * 2 + (sc ? 1 : 0));
    const wei = W.subarray(o * T * T, (o + 1) * T * T);
    stats.textContent = `var(q @ k^T) = ${fmt(V[o], 2)} (${sc ? "scaled" : "unscaled"}, head_size ${hs}); ` +
      `mean largest weight in the last row: ${fmt(M[o], 2)} (uniform would be ${fmt(1 / T, 2)}, one-hot 1.00)`;
    heat.set(wei, T, null, `${hs}:${sc}`);
    heat.draw();
    bars.set(Array.from(wei.subarray((T - 1) * T, T * T), (v, j) => ({ name: `key ${j}`, value: v })));
    root.dataset.drawMs = (performance.now() - t0).toFixed(2);
  }
  redraw();
  for (const name of ["head_size", "scaled"]) {
    model.on(`change:${name}`, redraw);
    off.push(() => model.off(`change:${name}`, redraw));
  }
  return () => off.forEach((f) => f());
}

// ----------------------------------------------------------------------------------------------

function render({ model, el }) {
  const root = h("div", { class: "bg-root" });
  el.append(root);
  const kind = model.get("kind");
  const make = { explorer, averaging, scaled }[kind];
  if (!make) {
    root.textContent = `unknown view kind ${kind}`;
    return undefined;
  }
  const cleanup = make(model, root);
  return () => {
    cleanup?.();
    root.remove();
  };
}

export default { render };
