// The run page's alpha view as two figures (js/subplots.js): the heatmaps of every cell type at one frame, and
// the history lines (per-edge entropy of each cell type, then the parameter-free share). The run page draws them;
// python -m bench ui_alpha_history times exactly these.
import * as fig from "./figures.js";
import { combine } from "./subplots.js";

// How many plots side by side in a container `width` pixels wide (the page's .grid: 420 px columns at least).
export function columnsFor(width, parts) {
  return Math.max(1, Math.min(parts, Math.floor((width || 1260) / 420)));
}

// opts: scale ("absolute" | "relative"), compact (no printed numbers: a live run), width (of the container).
export function heatmapsFigure(state, frame, opts = {}) {
  const cells = Object.entries(state.alpha.cells);
  const relative = opts.scale === "relative";
  const parts = cells.map(([ct, cell], i) => {
    const k = fig.cellFrame(cell, frame);
    // The page's frame label names the epoch; a part's title says its own only where its newest alpha is older
    // than the frame shown (alpha logged for some cells only). A title that changed every frame would re-lay out.
    const own = cell.frameIndex[k] !== frame ? state.alpha.frames[cell.frameIndex[k]] : undefined;
    // On the absolute scale every heatmap shares 0..1: one colour bar, on the last.
    return fig.alphaHeatmap(ct, cell, k, { frame: own, scale: opts.scale, compact: opts.compact,
                                           colorbar: relative || i === cells.length - 1 });
  });
  const columns = columnsFor(opts.width, parts.length);
  const out = combine(parts, { columns, xgap: relative ? 0.13 : 0.06 });
  // Cells with the same edges side by side name them once, on the row's first plot: tick labels are measured
  // one by one on every redraw, the largest part of a heatmap's cost (python -m bench ui_alpha_history).
  const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
  return nameRowsOnce(out, parts.map((p, i) => i % columns !== 0 && same(p.data[0].y, parts[i - (i % columns)].data[0].y)));
}

// Hide the y tick labels and title of the subplots marked in `repeat` (a plot whose row's first plot says them).
function nameRowsOnce(fig, repeat) {
  repeat.forEach((r, i) => {
    const key = `yaxis${i + 1}`;
    if (r) fig.layout[key] = { ...fig.layout[key], showticklabels: false, title: { text: "" } };
  });
  return fig;
}

export function historyFigure(state, opts = {}) {
  const parts = Object.keys(state.alpha.cells).map((ct) => fig.entropyLines(state, ct));
  const cells = parts.length;
  parts.push(fig.paramFreeShareLines(state));
  const columns = columnsFor(opts.width, parts.length);
  // The entropy plots share their y axis (0 to log |ops|): named once a row, as the heatmaps' edges.
  const range = (i) => JSON.stringify(parts[i].layout.yaxis.range);
  return nameRowsOnce(combine(parts, { columns }),
                      parts.map((_, i) => i < cells && i % columns !== 0 && range(i) === range(i - (i % columns))));
}
