// An experiment's study over seeds (GET /api/experiments/{id}/study, backend/study.py): per method, every seed's
// test IoU for the searched cell, its random baseline and any hand-designed baselines side by side, each arm's mean with its 95% bootstrap
// interval, the difference with its interval and the server's verdict; then the proxies' rank correlation against
// trained IoU, with parameter count and FLOPs as the bar every proxy must beat. The numbers are the server's.
import { api } from "../api.js";
import { draw, el, errorBox } from "../dom.js";
import { BACKGROUND_ONLY } from "../names.js";

const ARMS = [["searched", "searched", "#1565c0"], ["random", "random", "#757575"]];
const NETWORK_COLORS = ["#2e7d32", "#ef6c00", "#6a1b9a", "#00838f"];
// The searched and random arms, then one per hand-designed baseline (baseline.networks), by its label:
// [key, label, colour, the arm's numbers].
const armsOf = (g) => [...ARMS.map(([key, label, color]) => [key, label, color, g[key]]),
  ...Object.entries(g.networks || {}).map(([label, a], i) => [`network:${label}`, label, NETWORK_COLORS[i % NETWORK_COLORS.length], a])];
const f3 = (v) => (typeof v === "number" ? v.toFixed(3) : "–");
const signed = (v) => (typeof v === "number" ? `${v >= 0 ? "+" : ""}${v.toFixed(3)}` : "–");
const interval = (a) => (typeof a.low === "number" ? `${f3(a.low)} to ${f3(a.high)}` : "needs 2 seeds");

export async function renderStudy(box, experimentId) {
  let study;
  try {
    study = await api(`/api/experiments/${experimentId}/study`);
  } catch (err) { box.replaceChildren(errorBox(err)); return; }
  const parts = [];
  if (!study.groups.length) {
    parts.push(el("p", { class: "empty" }, "No search runs yet. Set repeats: N in the experiment to launch N seeds, "
      + "each with its random baseline at equal compute; their test IoUs are set side by side here."));
  }
  for (const g of study.groups) parts.push(group(g));
  parts.push(proxies(study));
  box.replaceChildren(...parts);
  for (const g of study.groups) {
    const div = box.querySelector(`[data-fig="study-${g.method}"]`);
    if (armsOf(g).some(([, , , a]) => a.n)) draw(div, figure(g));
  }
}

function group(g) {
  const arms = armsOf(g);
  const seeds = [...new Set(arms.flatMap(([, , , a]) => a.points).map((p) => p.seed))].sort((a, b) => a - b);
  const cell = (points, seed) => {
    const ps = points.filter((p) => p.seed === seed);
    return el("td", {}, ps.length ? ps.map((p) => el("span", { class: "chip" }, el("a", { href: `#/runs/${p.run}` }, `run ${p.run}`),
      ` ${typeof p.iou === "number" ? f3(p.iou) : p.status}`, p.background_only ? el("span", { class: "warning" }, ` ⚠ ${BACKGROUND_ONLY}`) : "")) : "–");
  };
  const d = g.difference;
  return el("section", { class: "study-group", "data-method": g.method },
    el("h3", {}, `${g.method}: searched vs random, test IoU per seed`),
    el("div", { class: "grid" }, el("div", { class: "fig", "data-fig": `study-${g.method}`, id: `study-${g.method}` }),
      el("table", { class: "list study-summary" },
        el("thead", {}, el("tr", {}, ...["", "seeds with a test IoU", "mean", "95% interval"].map((h) => el("th", {}, h)))),
        el("tbody", {},
          ...arms.map(([key, label, , a]) => el("tr", { "data-arm": key }, el("th", {}, label), el("td", {}, String(a.n)),
            el("td", { class: "mean" }, f3(a.mean)), el("td", { class: "interval" }, interval(a)))),
          el("tr", { "data-arm": "difference" }, el("th", {}, "searched − random"), el("td", {}, ""),
            el("td", { class: "mean" }, signed(d.mean)),
            el("td", { class: "interval" }, typeof d.low === "number" ? `${signed(d.low)} to ${signed(d.high)}` : "needs 2 seeds each"))))),
    el("p", { class: "verdict", role: "status" }, el("strong", {}, "Verdict: "), g.verdict),
    el("table", { class: "list study-seeds" },
      el("thead", {}, el("tr", {}, ...["seed", "searched", "random baseline", ...arms.slice(ARMS.length).map(([, label]) => label)]
        .map((h) => el("th", {}, h)))),
      el("tbody", {}, seeds.map((s) => el("tr", { "data-seed": s }, el("td", {}, String(s)),
        ...arms.map(([, , , a]) => cell(a.points, s)))))));
}

// Points per seed, and each arm's mean with its bootstrap interval as the error bar.
function figure(g) {
  const data = [];
  const arms = armsOf(g);
  arms.forEach(([, label, color, a], i) => {
    const pts = a.points.filter((p) => typeof p.iou === "number");
    data.push({ type: "scatter", mode: "markers", name: `${label}, per seed`, x: pts.map(() => i - 0.12), y: pts.map((p) => p.iou),
      text: pts.map((p) => `seed ${p.seed}, run ${p.run}`), marker: { color, size: 9, opacity: 0.8 },
      hovertemplate: "%{text}: IoU %{y:.3f}<extra></extra>" });
    if (typeof a.mean === "number") {
      const bar = typeof a.low === "number"
        ? { type: "data", symmetric: false, array: [a.high - a.mean], arrayminus: [a.mean - a.low], color, thickness: 2, width: 8 } : undefined;
      data.push({ type: "scatter", mode: "markers", name: `${label}, mean (95% interval)`, x: [i + 0.12], y: [a.mean], error_y: bar,
        marker: { color, size: 14, symbol: "diamond", line: { width: 1, color: "#000" } },
        hovertemplate: `mean %{y:.3f}${bar ? `, 95% interval ${a.low.toFixed(3)} to ${a.high.toFixed(3)}` : ""}<extra>${label}</extra>` });
    }
  });
  return {
    data,
    layout: { title: { text: `${g.method}: test IoU, searched vs random`, font: { size: 14 } }, height: 320,
      xaxis: { tickvals: arms.map((_, i) => i), ticktext: arms.map((a) => a[1]), range: [-0.5, arms.length - 0.5], zeroline: false },
      yaxis: { title: { text: "test IoU (foreground)" }, range: [0, 1] }, showlegend: true,
      legend: { orientation: "h", y: -0.2 }, margin: { l: 60, r: 20, t: 40, b: 70 } },
  };
}

function proxies(study) {
  const head = el("h3", {}, "Proxies against trained IoU");
  if (!study.proxies.length) {
    return el("section", { class: "study-proxies" }, head, el("p", { class: "empty" },
      "No trained candidates with proxy scores yet: the random baselines' trials record them (with parameter count and FLOPs)."));
  }
  const verdict = (r) => (r.baseline ? "baseline" : r.beats_size === null ? "undefined" : r.beats_size ? "beats params and FLOPs" : "does not beat them");
  return el("section", { class: "study-proxies" }, head,
    el("p", { class: "muted" }, `Rank correlation over ${study.candidates} trained candidates of this experiment's discrete runs; `
      + "a proxy that ranks no better than the parameter count or the FLOPs is not worth scoring."),
    el("table", { class: "list study-proxies" },
      el("thead", {}, el("tr", {}, ...["", "Spearman", "Kendall", "candidates", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, study.proxies.map((r) => el("tr", { "data-proxy": r.name, class: r.baseline ? "baseline" : r.beats_size === false ? "loses" : "" },
        el("th", {}, r.baseline ? `${r.name} (size baseline)` : r.name), el("td", {}, signed(r.spearman)), el("td", {}, signed(r.kendall)),
        el("td", {}, String(r.n)), el("td", { class: "beats" }, verdict(r)))))));
}
