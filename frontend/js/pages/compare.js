// Compare two to four runs side by side: alpha at the same epoch, decoded cells with their differences marked,
// final metrics, each searched cell's IoU against its random baseline, and the precision-recall curves of the runs
// beside their hand-designed baselines' (from /api/compare).
import { allEvents, api } from "../api.js";
import { badge, draw, el, errorBox } from "../dom.js";
import { headlineText } from "../names.js";
import * as fig from "../figures.js";
import { combine } from "../subplots.js";
import { applyEvent, createRunState, frameAtEpoch } from "../runstate.js";
import { push, replace } from "../urlstate.js";

// The view in the URL beside the runs: #/compare?runs=3,4&epoch=7&scale=relative (left out when default).
const VIEW_DEFAULTS = { scale: "absolute" };

export async function render(root, { params }) {
  const ids = (params.get("runs") || "").split(",").map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0);
  root.append(el("h1", {}, "Compare runs"));
  const picker = el("form", { class: "toolbar", onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = `#/compare?runs=${new FormData(ev.target).get("runs").replace(/\s+/g, "")}`;
  } }, el("input", { name: "runs", value: ids.join(","), placeholder: "run ids, e.g. 3,4", "aria-label": "run ids" }),
  el("button", { type: "submit" }, "Compare"));
  root.append(picker);
  if (ids.length < 2 || ids.length > 4) {
    root.append(el("p", { class: "muted" }, "Give two to four run ids, or pick runs on an experiment's page."));
    return;
  }
  // performance.measure marks (compare:fetch, :fold, :alpha, :cells, :bottom): python -m bench ui_scale reports them.
  let mark = performance.now();
  const step = (name) => { performance.measure(`compare:${name}`, { start: mark }); mark = performance.now(); };
  let cmp;
  try {
    cmp = await api("/api/compare", { query: { runs: ids } });
  } catch (err) {
    root.append(errorBox(err));
    return;
  }
  step("fetch");
  const runs = cmp.runs.map((r) => {
    const state = createRunState();
    for (const a of r.alpha) applyEvent(state, { seq: a.seq, kind: "alpha", payload: a });
    const genotype = r.genotype && r.genotype.genotype ? r.genotype.genotype : r.genotype;
    // A hand-designed baseline is named by its network (`resnext-unet c16 d3 ...`), a search by its method.
    return { ...r, state, genotype, label: `run ${r.run.id} (${r.run.network ? r.run.network.label : r.run.method})` };
  });
  step("fold");
  const maxEpoch = Math.max(0, ...runs.flatMap((r) => r.state.alpha.frames.map((f) => f.epoch ?? 0)));
  const asked = Number(params.get("epoch"));
  const start = params.has("epoch") && Number.isFinite(asked) ? Math.min(Math.max(0, asked), maxEpoch) : maxEpoch;
  const slider = el("input", { type: "range", min: 0, max: maxEpoch, value: start, step: 1, id: "compare-epoch", "aria-label": "epoch" });
  const scale = el("select", { id: "colour-scale", "aria-label": "colour scale" },
    Object.entries(fig.COLOUR_SCALES).map(([value, text]) => el("option", { value, selected: value === params.get("scale") }, text)));
  const label = el("span", { class: "muted" });
  // A long history comes thinned (backend/compare.py MAX_ALPHA_FRAMES): say so, since the slider then skips epochs.
  const thinned = runs.filter((r) => r.alpha_total > r.alpha.length);
  const thinNote = thinned.length ? el("span", { class: "muted", id: "alpha-thinned",
    title: "Each heatmap's title names the epoch it shows: the latest frame at or before the slider's epoch." },
    `alpha of ${thinned.map((r) => `${r.alpha.length} of ${r.alpha_total} epochs`).join(", ")} (evenly spaced)`) : "";
  const cols = `repeat(${runs.length}, minmax(0, 1fr))`;
  const heads = el("div", { class: "side", style: `grid-template-columns: ${cols}` }, runs.map((r) => el("div", { class: "run-head" },
    el("h3", {}, el("a", { href: `#/runs/${r.run.id}` }, r.label)), badge(r.run.status),
    el("div", { class: "muted" }, el("span", { class: "headline", "data-run": r.run.id,
      "data-value": typeof r.headline.value === "number" ? String(r.headline.value) : "" }, headlineText(r.headline)),
      r.baseline_iou_mean != null ? ` · random ${r.baseline_iou_mean.toFixed(3)}` : "",
      r.iou_vs_baseline != null ? ` · Δ ${r.iou_vs_baseline >= 0 ? "+" : ""}${r.iou_vs_baseline.toFixed(3)}` : "",
      r.networks.filter((n) => typeof n.headline.value === "number").map((n) => ` · ${n.label} ${n.headline.value.toFixed(3)}`).join("")))));
  const alphaGrid = el("div", { class: "side", id: "compare-alpha", style: `grid-template-columns: ${cols}` });
  const cellGrid = el("div", { class: "side", id: "compare-cells", style: `grid-template-columns: ${cols}` });
  const diffList = el("ul", { class: "diff", id: "genotype-diff" }, cmp.genotype_diff.slice(0, 50).map((d) =>
    el("li", {}, el("code", {}, d.path), ": ", d.values.map((v, i) => `${runs[i].label} ${JSON.stringify(v)}`).join(" · "))));
  const bottom = el("div", { class: "grid" });
  root.append(heads, el("div", { class: "toolbar" }, el("span", {}, "alpha at epoch"), slider, label, scale, thinNote), alphaGrid,
    el("h2", {}, "Decoded cells"), el("p", { class: "muted" }, "Edges in red differ from the first run's cell."), cellGrid,
    cmp.genotype_diff.length ? el("details", {}, el("summary", {}, `${cmp.genotype_diff.length} genotype differences`), diffList) : "",
    el("h2", {}, "Metrics"), bottom);

  const slot = (parent, key) => {
    let d = parent.querySelector(`[data-fig="${key}"]`);
    if (!d) { d = el("div", { class: "fig", "data-fig": key }); parent.append(d); }
    return d;
  };
  const column = (grid, i) => grid.children[i] || grid.appendChild(el("div", { class: "col" }));
  const drawAlpha = () => {
    const epoch = Number(slider.value);
    label.textContent = String(epoch);
    runs.forEach((r, i) => {
      const col = column(alphaGrid, i);
      const frame = frameAtEpoch(r.state, epoch);
      if (frame < 0) { col.textContent = "no alpha at this epoch"; return; }
      // A run's cell types in one figure (js/subplots.js): 4 runs x 3 cells are 4 Plotly calls, not 12.
      const parts = Object.entries(r.state.alpha.cells).map(([ct, cell]) => {
        const k = fig.cellFrame(cell, frame);
        // On the absolute scale every heatmap shares 0..1: its colour bar once, on the last column.
        const colorbar = scale.value === "relative" || i === runs.length - 1;
        return fig.alphaHeatmap(ct, cell, k, { compact: runs.length > 2, scale: scale.value, colorbar,
          title: `${r.label}: ${ct}, epoch ${r.state.alpha.frames[cell.frameIndex[k]].epoch}` });
      });
      draw(slot(col, "alpha"), combine(parts, { columns: 1 }));
    });
  };
  slider.addEventListener("input", () => { drawAlpha(); replace({ epoch: slider.value === String(maxEpoch) ? null : slider.value }); });
  scale.addEventListener("change", () => { push({ scale: scale.value }, VIEW_DEFAULTS); drawAlpha(); });
  drawAlpha();
  step("alpha");

  const first = runs[0].genotype;
  runs.forEach((r, i) => {
    const col = column(cellGrid, i);
    const norm = fig.normalizeGenotype(r.genotype);
    if (!Object.keys(norm).length) { col.append(el("p", { class: "muted" }, "no genotype yet")); return; }
    // The first run is marked against the second, every other run against the first.
    const diff = fig.genotypeDiff(r.genotype, i === 0 ? runs[1].genotype : first);
    for (const [ct, cell] of Object.entries(norm)) {
      draw(slot(col, `cell-${ct}`), fig.cellGraph(ct, cell, { diff: diff[ct], title: `${r.label}: ${ct} cell` }));
    }
  });
  step("cells");

  draw(slot(bottom, "metrics"), fig.metricBars(runs.map((r) => ({ label: r.label, metrics: r.final_metrics }))));
  const searched = runs.filter((r) => r.iou != null && r.run.kind !== "baseline").map((r) => ({ label: r.label, iou: r.iou }));
  // Every random candidate of the runs' baselines (their candidate events), not only each baseline's best.
  const baselineIds = [...new Set(runs.flatMap((r) => r.baseline_runs))];
  const lists = await Promise.all(baselineIds.map((b) => allEvents(b, { kind: "candidate" }).catch(() => [])));
  let random = lists.flat().map((e) => e.payload).filter((c) => c.final !== false);
  if (!random.length) random = runs.flatMap((r) => r.baseline_iou.map((iou) => ({ iou })));
  if (searched.length || random.length) draw(slot(bottom, "vs-random"), fig.searchedVsRandom(searched, random));
  const series = (r) => r.metrics["search.val_iou"] || r.metrics.val_iou;
  const withIou = runs.filter(series).map((r) => ({ label: r.label, points: series(r) }));
  if (withIou.length) draw(slot(bottom, "val-iou"), fig.metricLines(withIou, "val_iou"));
  // Each run's test curves, then its hand-designed baselines' (once each, also when one is compared itself).
  const pr = [], shown = new Set();
  for (const r of runs) {
    if (r.curves && !shown.has(r.run.id)) pr.push({ label: r.label, curves: r.curves });
    shown.add(r.run.id);
  }
  for (const n of runs.flatMap((r) => r.networks)) {
    if (n.curves && !shown.has(n.run)) pr.push({ label: `run ${n.run} (${n.label})`, curves: n.curves });
    shown.add(n.run);
  }
  if (pr.some((s) => fig.prTable({ curves: s.curves }).some((row) => row.recall.length > 0))) {
    draw(slot(bottom, "pr-curves"), fig.prCurvesBeside(pr));
  }
  step("bottom");
}
