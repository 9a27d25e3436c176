// Figure design lives here and only here: pure functions from run state / events to Plotly figure specs
// ({data, layout}). Pages call them and hand the result to Plotly.react; tests load this module in Chromium.

import { edgeKey, genotypeDiff, normalizeGenotype } from "./genotype.js";

export { genotypeDiff, normalizeGenotype };  // the pages and tests reach genotype shapes through here too
export const MAX_LINE_POINTS = 400;     // per trace; longer histories are thinned so 300+ epochs stay smooth
// The alpha history's lines (14 per cell type, redrawn live) keep fewer: SVG path length is what a live redraw
// pays for, 45 lines x 300 points cost twice 45 x 100 (python -m bench ui_alpha_history), and at 100 points over a
// plot a few hundred pixels wide the lines look the same.
export const ALPHA_LINE_POINTS = 100;
export const COLLAPSE_THRESHOLD = 0.5;  // share of edges won by parameter-free ops that counts as collapse
const FONT = { family: "system-ui, sans-serif", size: 12 };
const PALETTE = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00",
                 "#b82e2e", "#316395", "#994499", "#22aa99", "#aaaa11", "#6633cc", "#e67300", "#8b0707"];
const OP_COLOURS = {
  none: "#9e9e9e", skip_connect: "#e53935", max_pool_3x3: "#fb8c00", avg_pool_3x3: "#fdd835",
  sep_conv_3x3: "#1e88e5", sep_conv_5x5: "#3949ab", dil_conv_3x3: "#43a047", dil_conv_5x5: "#00897b",
};

export function opColour(op, i = 0) {
  return OP_COLOURS[op] || PALETTE[i % PALETTE.length];
}

function baseLayout(title, extra = {}) {
  return {
    title: { text: title, font: { size: 14 } }, font: FONT, margin: { l: 60, r: 20, t: 40, b: 45 },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff", ...extra,
  };
}

// Keep at most `maxPoints` of (x, y), evenly spaced, always keeping the last point (the newest epoch).
export function downsample(xs, ys, maxPoints = MAX_LINE_POINTS) {
  const n = xs.length;
  if (n <= maxPoints) return { x: xs.slice(), y: ys.slice() };
  const x = [], y = [];
  const stride = (n - 1) / (maxPoints - 1);
  for (let i = 0; i < maxPoints; i++) {
    const k = Math.round(i * stride);
    x.push(xs[k]); y.push(ys[k]);
  }
  x[x.length - 1] = xs[n - 1]; y[y.length - 1] = ys[n - 1];
  return { x, y };
}

// The x axis of a live history: whole epochs while there are few of them (Plotly would tick 0, 0.5, 1), a range
// that grows in steps of half a power of ten (300 epochs: 0-300, then 0-350 from epoch 301), horizontal labels.
// A live redraw then finds the axis as it was and its tick labels measured: left to Plotly, the range followed
// every epoch and each label was measured again, with the angle that fits them (python -m bench ui_alpha_history).
function epochAxis(xs, title = "epoch") {
  const lo = xs.length ? Math.min(...xs) : 0, span = xs.length ? Math.max(...xs) - lo : 0;
  const step = span <= 10 ? 1 : 10 ** Math.floor(Math.log10(span)) / 2;
  const range = [lo, lo + Math.max(1, Math.ceil(span / step) * step)];
  return { title: { text: title }, range, autorange: false, tickangle: 0, ...(span <= 10 ? { dtick: 1 } : { nticks: 7 }) };
}

// x of each of a cell's alpha frames: the epoch, or the training step when alpha is also logged within epochs
// (search.events_every_steps), so that frames of one epoch do not pile up on one x.
function frameX(state, cell) {
  const frames = cell.frameIndex.map((i) => state.alpha.frames[i]);
  const epochs = new Set(frames.map((f) => f.epoch));
  const bySteps = frames.length > epochs.size && frames.every((f) => typeof f.step === "number");
  return { xs: frames.map((f, i) => (bySteps ? f.step : f.epoch ?? i)), title: bySteps ? "step" : "epoch" };
}

// Which of a cell's frames to show for global frame `index` (the latest at or before it).
export function cellFrame(cell, index) {
  let k = -1;
  for (let j = 0; j < cell.frameIndex.length && cell.frameIndex[j] <= index; j++) k = j;
  return k < 0 ? 0 : k;
}

// ---------------------------------------------------------------------------------------------- alpha

// Colour is the weight, on an absolute 0..1 scale by default: a near-uniform alpha (1/|ops| everywhere, a search
// that has not learned) then looks uniform, as it is. opts.scale "relative" stretches the colours to the frame's
// own min..max, which shows which op leads on each edge however small the lead (the page labels it as such).
export const COLOUR_SCALES = { absolute: "colour: absolute, 0 to 1", relative: "colour: relative, this frame's min to max" };

export function alphaHeatmap(cellType, cell, k, opts = {}) {
  const z = cell.weights[k] || [];
  const flat = z.flat();
  const lo = flat.length ? Math.min(...flat) : 0, hi = flat.length ? Math.max(...flat) : 1, spread = hi - lo;
  const [zmin, zmax] = opts.scale === "relative" && flat.length ? [lo, hi] : [0, 1];
  const frame = opts.frame;
  const when = frame ? ` · epoch ${frame.epoch ?? "?"}${frame.step != null ? `, step ${frame.step}` : ""}` : "";
  return {
    data: [{
      type: "heatmap", name: cellType, z, x: cell.ops, y: cell.edges, zmin, zmax: zmax > zmin ? zmax : zmin + 1e-6, colorscale: "Viridis",
      // Three decimals when the weights lie close together (early alpha), where two would print one number.
      // Compact (a live run, a compare of 3+): no printed numbers, and no text array built and sent for them.
      ...(opts.compact ? {} : { text: z.map((row) => row.map((v) => v.toFixed(spread < 0.05 ? 3 : 2))), texttemplate: "%{text}" }),
      hovertemplate: "edge %{y}<br>%{x}: %{z:.3f}<extra></extra>",
      // opts.colorbar false: a row of heatmaps on one scale shows it once (each colour bar is an axis Plotly redraws).
      showscale: opts.colorbar !== false, colorbar: { title: { text: opts.scale === "relative" ? "weight (relative)" : "weight" }, thickness: 10 },
    }],
    layout: baseLayout(opts.title || `${cellType} cell: alpha${when}`, {
      xaxis: { tickangle: -35, automargin: true },
      yaxis: { autorange: "reversed", title: { text: "edge" }, automargin: true, dtick: 1 },
      margin: { l: 60, r: 10, t: 40, b: 90 }, height: Math.max(320, 150 + 18 * z.length),
    }),
  };
}

export function entropyLines(state, cellType, opts = {}) {
  const cell = state.alpha.cells[cellType];
  const { xs, title } = frameX(state, cell);
  // Every edge's line in one trace, the lines apart by a null: one SVG path instead of fourteen, which a live
  // redraw pays for per path (python -m bench ui_alpha_history). Hover names the edge (customdata).
  const x = [], y = [], edge = [];
  cell.edges.forEach((name, e) => {
    const d = downsample(xs, cell.entropy.map((row) => row[e]), opts.maxPoints ?? ALPHA_LINE_POINTS);
    if (e) { x.push(null); y.push(null); edge.push(null); }
    x.push(...d.x); y.push(...d.y); edge.push(...d.x.map(() => name));
  });
  const data = [{ type: "scatter", mode: "lines", name: "edges", x, y, customdata: edge, connectgaps: false,
                  line: { width: 1.2, color: "rgba(51, 102, 204, 0.55)" },
                  hovertemplate: `edge %{customdata}<br>%{x}: %{y:.3f} nats<extra></extra>` }];
  const maxH = Math.log(Math.max(cell.ops.length, 1));
  return {
    data,
    layout: baseLayout(`${cellType} cell: entropy of each edge`, {
      xaxis: epochAxis(xs, title), yaxis: { title: { text: "entropy (nats)" }, range: [0, maxH * 1.05] },
      // No legend: the lines are the edges, and hover names each one.
      showlegend: false,
    }),
  };
}

// Points per trace up to which line plots also draw markers: beyond, markers are SVG nodes nobody tells apart.
const MARKERS_UP_TO = 60;

export function paramFreeShareLines(state, opts = {}) {
  const threshold = opts.threshold ?? COLLAPSE_THRESHOLD;
  let axis = { xs: [], title: "epoch" };
  const data = Object.entries(state.alpha.cells).map(([ct, cell], i) => {
    axis = frameX(state, cell);
    const { x, y } = downsample(axis.xs, cell.share, opts.maxPoints ?? ALPHA_LINE_POINTS);
    // Markers while they can be told apart: at 300 epochs three traces of markers are ~900 SVG nodes, which cost
    // more than the rest of the plot on every live redraw (python -m bench ui_alpha_history).
    return { type: "scatter", mode: x.length > MARKERS_UP_TO ? "lines" : "lines+markers", name: ct, x, y, marker: { size: 4 },
             line: { color: PALETTE[i % PALETTE.length] } };
  });
  return {
    data,
    layout: baseLayout("share of parameter-free ops (skip, none, pooling)", {
      xaxis: epochAxis(axis.xs, axis.title), yaxis: { title: { text: "share" }, range: [0, 1.02] },
      shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: threshold, y1: threshold,
                 line: { color: "#e53935", dash: "dash", width: 1 } }],
    }),
  };
}

// The known DARTS failure: skip_connect and none take over the edges. Warned per cell type when they win at
// least `threshold` of the edges in the newest alpha, each with a clear lead: at least DOMINANT_FACTOR times the
// uniform weight 1/|ops|, since near-uniform early alpha hands out argmaxes by chance. Pools are left out for
// the same reason (the share line above still counts them).
export const COLLAPSE_OPS = new Set(["skip_connect", "none"]);
export const DOMINANT_FACTOR = 1.5;

export function collapseWarnings(state, opts = {}) {
  const threshold = opts.threshold ?? COLLAPSE_THRESHOLD;
  const out = [];
  for (const [ct, cell] of Object.entries(state.alpha.cells)) {
    const k = cell.weights.length - 1;
    if (k < 0) continue;
    const counts = {};
    for (const row of cell.weights[k]) {
      let best = 0;
      for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
      const clear = row[best] >= DOMINANT_FACTOR / row.length;
      if (clear && COLLAPSE_OPS.has(cell.ops[best])) counts[cell.ops[best]] = (counts[cell.ops[best]] || 0) + 1;
    }
    const won = Object.values(counts).reduce((a, b) => a + b, 0);
    const share = won / cell.weights[k].length;
    if (share < threshold) continue;
    const top = Object.entries(counts).sort((a, b) => b[1] - a[1])[0];
    const frame = state.alpha.frames[cell.frameIndex[k]] || {};
    out.push({
      cell: ct, share, epoch: frame.epoch ?? null, op: top[0],
      message: `${ct} cell: ${Object.keys(counts).join(" and ")} win ${won} of ${cell.weights[k].length} edges ` +
        `${Object.keys(counts).length > 1 ? `(mostly ${top[0]}) ` : ""}at epoch ${frame.epoch ?? "?"}: the known DARTS collapse; ` +
        "consider PC-DARTS or GAEA, a warm-up, fewer epochs or early stopping",
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- metrics

// The search's losses and validation IoU per epoch; the retrain stage (its epochs count from 0 again) dashed.
export function lossCurves(metrics, opts = {}) {
  const rows = metrics.filter((m) => m.epoch != null);
  const search = rows.filter((m) => m.stage !== "retrain");
  const retrain = rows.filter((m) => m.stage === "retrain");
  const series = [[search, "train_loss", "train loss", "y", "#3366cc"], [search, "val_loss", "validation loss", "y", "#ff9900"],
                  [search, "val_iou", "validation IoU", "y2", "#109618"], [retrain, "train_loss", "retrain: train loss", "y", "#7e57c2"]];
  const data = [];
  for (const [src, key, name, yaxis, color] of series) {
    const have = src.filter((m) => typeof m[key] === "number");
    if (!have.length) continue;
    const { x, y } = downsample(have.map((m) => m.epoch), have.map((m) => m[key]), opts.maxPoints);
    data.push({ type: "scatter", mode: "lines+markers", name, x, y, yaxis, marker: { size: 4 },
                line: { color, dash: src === retrain ? "dash" : "solid" } });
  }
  return {
    data,
    layout: baseLayout("loss and IoU", {
      xaxis: epochAxis(rows.map((m) => m.epoch)), yaxis: { title: { text: "loss" }, rangemode: "tozero" },
      yaxis2: { title: { text: "IoU" }, overlaying: "y", side: "right", range: [0, 1] },
      legend: { orientation: "h", y: -0.25 }, margin: { l: 60, r: 50, t: 40, b: 70 },
    }),
  };
}

// ---------------------------------------------------------------------------------------------- genotype

// Columns by depth (longest path from the inputs): the inputs above and below the intermediate nodes, so their
// edges fan in from either side; nodes of one depth stacked in a column.
function nodeLayout(cell) {
  const depth = new Map([[0, 0], [1, 0]]);
  const nodes = new Set([0, 1, ...cell.edges.flatMap((e) => [e.from, e.to]), ...cell.concat]);
  const sorted = [...nodes].sort((x, y) => x - y);
  for (const n of sorted) {
    if (n < 2) continue;
    const preds = cell.edges.filter((e) => e.to === n).map((e) => depth.get(e.from) ?? 0);
    depth.set(n, 1 + (preds.length ? Math.max(...preds) : 0));
  }
  const maxDepth = Math.max(1, ...depth.values());
  const byDepth = {};
  for (const n of sorted) (byDepth[depth.get(n)] ||= []).push(n);
  const pos = new Map();
  for (const [d, ns] of Object.entries(byDepth)) {
    const gap = Number(d) === 0 ? 2.4 : 1;
    ns.forEach((n, i) => pos.set(n, { x: Number(d), y: gap * ((ns.length - 1) / 2 - i) }));
  }
  // The output sits off the chain's line: the concat edges would otherwise run through the nodes between.
  pos.set("out", { x: maxDepth + 1, y: 0.9 });
  return pos;
}

// Where each edge's op label goes: the first of a few points along the edge whose label box (estimated in pixels
// for a plot of `size`) clears every node's circle and the labels already placed; the middle if none does. A
// label over a node hides its number, and edges into one node converge, so one fixed point along them fails.
const LABEL_TS = [0.5, 0.4, 0.6, 0.32, 0.68, 0.25, 0.75];
const LABEL_OFFSETS = [0, 16, -16, 27, -27, 38, -38];  // pixels, up and down (27: a label clear of a node it passes)
// The size labels are placed for: about the narrowest a panel gets (a compare column of four at 1400 px).
export const CELL_GRAPH_SIZE = { width: 320, height: 340, margin: 40, nodeRadius: 17 };

function placeLabels(edges, pos, texts, range) {
  const { width, height, margin, nodeRadius } = CELL_GRAPH_SIZE;
  const sx = (width - 2 * 10) / (range.x[1] - range.x[0]), sy = (height - margin - 10) / (range.y[1] - range.y[0]);
  const px = (p) => ({ x: p.x * sx, y: p.y * sy });
  const nodes = [...pos.values()].map(px);
  const placed = [];
  const clear = (box) => nodes.every((n) => {
    const dx = Math.max(box.x0 - n.x, 0, n.x - box.x1), dy = Math.max(box.y0 - n.y, 0, n.y - box.y1);
    return dx * dx + dy * dy > nodeRadius * nodeRadius;
  }) && placed.every((o) => box.x1 < o.x0 || o.x1 < box.x0 || box.y1 < o.y0 || o.y1 < box.y0);
  return edges.map((e, i) => {
    const a = pos.get(e.from), b = pos.get(e.to);
    const w = 6.3 * texts[i].replace(/<[^>]+>/g, "").length + 6, h = 16;
    // Along the edge first; then beside it (above, below), for an edge shorter than its label.
    const boxes = LABEL_OFFSETS.flatMap((dy) => LABEL_TS.map((t) => {
      const c = px({ x: a.x + (b.x - a.x) * t, y: a.y + (b.y - a.y) * t });
      return { x0: c.x - w / 2, x1: c.x + w / 2, y0: c.y + dy - h / 2, y1: c.y + dy + h / 2, t, dy };
    }));
    const best = boxes.find(clear) || boxes[0];
    placed.push(best);
    return { x: a.x + (b.x - a.x) * best.t, y: a.y + (b.y - a.y) * best.t + best.dy / sy };
  });
}

// The decoded cell as a DAG: inputs c_{k-2}, c_{k-1}, intermediate nodes, output; edges labelled by op.
// `diff` (from genotypeDiff) marks edges that differ from another run's cell.
export function cellGraph(cellType, cellGenotype, opts = {}) {
  const cell = cellGenotype || { edges: [], concat: [] };
  const diff = opts.diff || new Map();
  const pos = nodeLayout(cell);
  const annotations = [];
  const label = { x: [], y: [], text: [], color: [] };
  const all = [...pos.values()];
  const range = { x: [Math.min(...all.map((p) => p.x)) - 0.45, Math.max(...all.map((p) => p.x)) + 0.45],
                  y: [Math.min(...all.map((p) => p.y)) - 0.5, Math.max(...all.map((p) => p.y)) + 0.5] };
  const texts = cell.edges.map((e) => {
    const changed = diff.has(edgeKey(e));
    return changed ? `<b>${e.op}</b> ≠ ${diff.get(edgeKey(e)) ?? "—"}` : e.op;
  });
  const spots = placeLabels(cell.edges, pos, texts, range);
  cell.edges.forEach((e, i) => {
    const a = pos.get(e.from), b = pos.get(e.to);
    const changed = diff.has(edgeKey(e));
    const color = changed ? "#d50000" : opColour(e.op, i);
    annotations.push({ x: b.x, y: b.y, ax: a.x, ay: a.y, xref: "x", yref: "y", axref: "x", ayref: "y", text: "",
                       showarrow: true, arrowhead: 2, arrowsize: 1, arrowwidth: changed ? 3 : 2, arrowcolor: color,
                       standoff: 14, startstandoff: 14 });
    label.x.push(spots[i].x); label.y.push(spots[i].y);
    label.text.push(texts[i]);
    label.color.push(color);
    annotations.push({ x: label.x[i], y: label.y[i], xref: "x", yref: "y", text: label.text[i], showarrow: false,
                       font: { color, size: 11 }, bgcolor: "rgba(255,255,255,0.85)", borderpad: 1 });
  });
  const out = pos.get("out");
  for (const n of cell.concat) {
    const a = pos.get(n);
    if (!a) continue;
    annotations.push({ x: out.x, y: out.y, ax: a.x, ay: a.y, xref: "x", yref: "y", axref: "x", ayref: "y", text: "",
                       showarrow: true, arrowhead: 1, arrowwidth: 1, arrowcolor: "#9e9e9e", standoff: 14, startstandoff: 14 });
  }
  const names = (n) => (n === 0 ? "c<sub>k-2</sub>" : n === 1 ? "c<sub>k-1</sub>" : n === "out" ? "out" : String(n));
  const keys = [...pos.keys()];
  return {
    data: [
      { type: "scatter", mode: "markers+text", name: "nodes", hoverinfo: "skip", x: keys.map((k) => pos.get(k).x),
        y: keys.map((k) => pos.get(k).y), text: keys.map(names), textposition: "middle center",
        marker: { size: 30, color: keys.map((k) => (k === 0 || k === 1 ? "#bbdefb" : k === "out" ? "#c8e6c9" : "#fff3e0")),
                  line: { width: 1, color: "#555" } } },
      // Invisible markers under the labels: hover shows the op, and the trace lists the ops in edge order.
      { type: "scatter", mode: "markers", name: "ops", hoverinfo: "text", x: label.x, y: label.y, text: label.text,
        marker: { size: 14, opacity: 0 } },
    ],
    layout: baseLayout(opts.title || `${cellType} cell${opts.epoch != null ? ` · epoch ${opts.epoch}` : ""}`, {
      annotations, showlegend: false, xaxis: { visible: false, range: range.x }, yaxis: { visible: false, range: range.y },
      margin: { l: 10, r: 10, t: CELL_GRAPH_SIZE.margin, b: 10 }, height: CELL_GRAPH_SIZE.height,
    }),
  };
}

// ---------------------------------------------------------------------------------------------- evaluation

// The engine's `curves: {class: {threshold: {precision, recall, ap}}}`, or `pr: {threshold: {...}}`, or a list
// [{iou_threshold|threshold, precision, recall, ap}] -> [{cls, threshold, precision, recall, ap}] sorted.
export function prTable(evaluation) {
  if (!evaluation) return [];
  const rows = [];
  const add = (cls, t, r) => rows.push({ ...r, cls, threshold: Number(t) });
  if (evaluation.curves && typeof evaluation.curves === "object") {
    for (const [cls, perT] of Object.entries(evaluation.curves)) for (const [t, r] of Object.entries(perT || {})) add(cls, t, r);
  } else {
    const src = evaluation.pr ?? evaluation.pr_curves;
    if (Array.isArray(src)) src.forEach((r) => add(r.cls ?? null, r.iou_threshold ?? r.threshold, r));
    else if (src && typeof src === "object") for (const [t, r] of Object.entries(src)) add(null, t, r);
  }
  return rows.filter((r) => Array.isArray(r.precision) && Array.isArray(r.recall))
    .sort((a, b) => String(a.cls).localeCompare(String(b.cls)) || a.threshold - b.threshold);
}

export function prCurves(evaluation) {
  const rows = prTable(evaluation);
  const classes = new Set(rows.map((r) => r.cls));
  const data = rows.map((r, i) => ({
    type: "scatter", mode: "lines", line: { shape: "hv", color: PALETTE[i % PALETTE.length] },
    name: `${classes.size > 1 ? `class ${r.cls}, ` : ""}IoU ≥ ${r.threshold}${typeof r.ap === "number" ? ` (AP ${r.ap.toFixed(3)})` : ""}`,
    x: r.recall, y: r.precision,
  }));
  return {
    data,
    layout: baseLayout("precision-recall at object IoU thresholds", {
      xaxis: { title: { text: "recall" }, range: [0, 1.02] }, yaxis: { title: { text: "precision" }, range: [0, 1.02] },
      legend: { orientation: "h", y: -0.25 }, margin: { l: 60, r: 20, t: 40, b: 80 },
    }),
  };
}

// Several networks' precision-recall curves in one figure ([{label, curves}], the engine's `curves` each): one
// colour per network, one dash per object IoU threshold, so a searched network and its hand-designed baselines
// are read against each other at the same threshold.
const THRESHOLD_DASHES = ["solid", "dash", "dot", "dashdot", "longdash"];
export function prCurvesBeside(series) {
  const thresholds = [...new Set(series.flatMap((s) => prTable({ curves: s.curves }).map((r) => r.threshold)))].sort((a, b) => a - b);
  const data = series.flatMap((s, i) => {
    const rows = prTable({ curves: s.curves });
    const classes = new Set(rows.map((r) => r.cls));
    return rows.map((r) => ({
      type: "scatter", mode: "lines", legendgroup: s.label,
      line: { shape: "hv", color: PALETTE[i % PALETTE.length], dash: THRESHOLD_DASHES[thresholds.indexOf(r.threshold) % THRESHOLD_DASHES.length] },
      name: `${s.label}: ${classes.size > 1 ? `class ${r.cls}, ` : ""}IoU ≥ ${r.threshold}${typeof r.ap === "number" ? ` (AP ${r.ap.toFixed(3)})` : ""}`,
      x: r.recall, y: r.precision,
    }));
  });
  return {
    data,
    layout: baseLayout("precision-recall at object IoU thresholds, test split", {
      xaxis: { title: { text: "recall" }, range: [0, 1.02] }, yaxis: { title: { text: "precision" }, range: [0, 1.02] },
      legend: { orientation: "h", y: -0.25 }, margin: { l: 60, r: 20, t: 40, b: 80 }, height: 420 + 18 * data.length,
    }),
  };
}

// Searched cells' IoU against the random candidates' (a strip over a box): is the search better than chance?
export function searchedVsRandom(searched, candidates, opts = {}) {
  const group = opts.group || "random";
  const ious = candidates.filter((c) => c.status !== "error" && typeof c.iou === "number").map((c) => c.iou);
  const data = [{
    type: "box", name: `${group} candidates`, y: ious, x: ious.map(() => group), boxpoints: "all", jitter: 0.5,
    pointpos: 0, marker: { color: "#757575", size: 6, opacity: 0.7 }, line: { color: "#9e9e9e" }, fillcolor: "rgba(0,0,0,0.03)",
    hovertemplate: `IoU %{y:.3f}<extra>${group}</extra>`,
  }];
  searched.forEach((s, i) => data.push({
    type: "scatter", mode: "markers", name: s.label, x: ["searched"], y: [s.iou],
    marker: { symbol: "star", size: 16, color: PALETTE[i % PALETTE.length], line: { width: 1, color: "#000" } },
    hovertemplate: `${s.label}: IoU %{y:.3f}<extra></extra>`,
  }));
  return {
    data,
    layout: baseLayout(opts.title || (searched.length ? `searched cell vs ${group} candidates (IoU)` : `${group} candidates (IoU)`), {
      yaxis: { title: { text: opts.metric || "IoU" }, range: [0, 1] }, xaxis: { type: "category", categoryorder: "array",
      categoryarray: [group, "searched"] }, showlegend: true, legend: { orientation: "h", y: -0.2 },
      margin: { l: 60, r: 20, t: 40, b: 80 },
    }),
  };
}

// A candidate's compute: the worker-seconds its trial held a worker (what a compute budget counts), else its
// training time (older logs without started/finished).
function trialSeconds(c) {
  if (typeof c.started === "number" && typeof c.finished === "number") return Math.max(c.finished - c.started, 0);
  return typeof c.train_time_s === "number" ? c.train_time_s : 0;
}

// Best IoU found so far against the compute spent (cumulative worker-seconds), one line per strategy.
export function bestSoFar(series, opts = {}) {
  const data = series.map((s, i) => {
    let spent = 0, best = -Infinity;
    const x = [], y = [];
    for (const c of s.candidates) {
      spent += trialSeconds(c);
      if (typeof c.iou === "number" && c.status !== "error") best = Math.max(best, c.iou);
      if (best > -Infinity) { x.push(spent); y.push(best); }
    }
    const d = downsample(x, y, opts.maxPoints);
    return { type: "scatter", mode: "lines", line: { shape: "hv", color: PALETTE[i % PALETTE.length] }, name: s.name, ...d };
  });
  // The searched cell as a level to beat, across the compute the random searches spent.
  if (opts.reference && typeof opts.reference.iou === "number") {
    const xmax = Math.max(0, ...data.map((t) => (t.x.length ? t.x[t.x.length - 1] : 0)));
    data.push({ type: "scatter", mode: "lines", name: opts.reference.label, x: [0, xmax], y: [opts.reference.iou, opts.reference.iou],
                line: { dash: "dash", color: "#000", width: 1.5 } });
  }
  return {
    data,
    layout: baseLayout("best so far vs compute", {
      xaxis: { title: { text: "compute spent (worker-seconds)" } }, yaxis: { title: { text: "best IoU" } },
    }),
  };
}

// Which trial worker (MPI rank, or local slot) trained which candidate, and when: one row per worker, one bar per
// trial from its `started` to its `finished`, coloured by outcome. `workers` gives each one's busy and idle
// seconds over the span from the first start to the last finish (idle: waiting for a trial, or drained at the end).
export function workerTimeline(candidates, opts = {}) {
  const timed = candidates.filter((c) => typeof c.started === "number" && typeof c.finished === "number"
                                         && c.finished >= c.started && c.worker !== undefined && c.worker !== null);
  const t0 = Math.min(...timed.map((c) => c.started)), t1 = Math.max(...timed.map((c) => c.finished));
  const span = timed.length ? t1 - t0 : 0;
  const ids = [...new Set(timed.map((c) => c.worker))].sort((a, b) => a - b);
  const workers = ids.map((w) => {
    const mine = timed.filter((c) => c.worker === w);
    const busy = mine.reduce((sum, c) => sum + (c.finished - c.started), 0);
    return { worker: w, trials: mine.length, busy_s: busy, idle_s: Math.max(span - busy, 0),
             busy_fraction: span > 0 ? busy / span : null };
  });
  const label = (w) => `${opts.unit || "rank"} ${w}`;
  const failed = (c) => c.status !== "ok";
  const data = [false, true].map((bad) => {
    const cs = timed.filter((c) => failed(c) === bad);
    return {
      type: "bar", orientation: "h", name: bad ? "failed trial" : "trained candidate",
      y: cs.map((c) => label(c.worker)), base: cs.map((c) => c.started - t0), x: cs.map((c) => c.finished - c.started),
      text: cs.map((c) => `trial ${c.trial}`), textposition: "inside", insidetextanchor: "middle",
      customdata: cs.map((c) => [c.trial, c.attempt ?? 0, typeof c.iou === "number" ? c.iou.toFixed(3) : c.status]),
      hovertemplate: "trial %{customdata[0]} (attempt %{customdata[1]}): %{customdata[2]}<br>"
                     + "%{base:.1f} s to %{x:.1f} s later<extra>%{y}</extra>",
      marker: { color: bad ? "#dc3912" : PALETTE[0], line: { color: "#fff", width: 1 } },
    };
  }).filter((t) => t.y.length);
  const busy = workers.reduce((sum, w) => sum + w.busy_s, 0);
  const share = span > 0 && workers.length ? ` · busy ${(100 * busy / (span * workers.length)).toFixed(0)}%` : "";
  return {
    data, workers, span_s: span,
    layout: baseLayout(`trials per worker${share}`, {
      barmode: "overlay", showlegend: data.length > 1,
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
      xaxis: { title: { text: "seconds since the first trial started" }, rangemode: "tozero" },
      // Each row says its worker's busy and idle seconds over the span.
      yaxis: { type: "category", categoryorder: "array", categoryarray: ids.map(label).reverse(), automargin: true,
               tickvals: ids.map(label), ticktext: workers.map((w) => `${label(w.worker)}: ${w.busy_s.toFixed(0)} s busy, ${w.idle_s.toFixed(0)} s idle`) },
      height: Math.max(180, 80 + 34 * ids.length), margin: { l: 70, r: 20, t: 50, b: 50 },
    }),
  };
}

// Side by side: one bar group per metric, one bar per run.
// Final numbers as /api/compare names them (stage.metric: search.val_iou, retrain.miou, evaluate.miou), or bare.
export const FINAL_METRICS = ["search.val_iou", "val_iou", "retrain.miou", "evaluate.miou", "miou", "test_iou",
                              "search.val_loss", "val_loss"];

// A compare panel is a quarter of the page: the tick labels break at the stage ("search<br>val_iou"), the legend
// sits below the bars (it wraps into rows) and the margins grow to what the labels need, so nothing is cut off.
export function metricBars(runs) {
  const keys = FINAL_METRICS.filter((k) => runs.some((r) => typeof r.metrics[k] === "number"));
  return {
    data: runs.map((r, i) => ({
      type: "bar", name: r.label, x: keys, y: keys.map((k) => (typeof r.metrics[k] === "number" ? r.metrics[k] : null)),
      marker: { color: PALETTE[i % PALETTE.length] }, hovertemplate: `${r.label}<br>%{x}: %{y:.3f}<extra></extra>`,
    })),
    layout: baseLayout("final metrics", {
      barmode: "group", yaxis: { rangemode: "tozero", automargin: true },
      xaxis: { tickvals: keys, ticktext: keys.map((k) => k.replace(".", "<br>")), tickangle: 0, automargin: true },
      legend: { orientation: "h", x: 0, xanchor: "left", y: -0.2, yanchor: "top" }, margin: { l: 50, r: 10, t: 40, b: 20 },
    }),
  };
}

// One metric over epochs for several runs: [{label, points: [[epoch, value], ...]}].
export function metricLines(runs, name) {
  return {
    data: runs.map((r, i) => {
      const d = downsample(r.points.map((p) => p[0]), r.points.map((p) => p[1]));
      return { type: "scatter", mode: d.x.length > MARKERS_UP_TO ? "lines" : "lines+markers", name: r.label, ...d,
               marker: { size: 4 }, line: { color: PALETTE[i % PALETTE.length] } };
    }),
    layout: baseLayout(name.replace(/_/g, " "), { xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: name } } }),
  };
}
