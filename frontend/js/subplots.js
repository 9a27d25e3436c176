// Several figures from figures.js drawn as one Plotly figure, on a grid of subplots. Each Plotly call has a fixed
// cost (defaults, axes, a page layout read), so a live page that redraws three heatmaps and four line plots per
// event pays it seven times; one figure per group pays it once (python -m bench ui_alpha_history).
//
// Each part keeps its traces, axes, title (an annotation above its plot) and shapes; its axes are renamed to its
// subplot's. Axis automargin is turned off: in a grid it re-lays out the figure once per axis (3x the draw time
// measured); each part's own margins give its band the room for its tick labels instead. One legend at most: the
// first part that has one keeps it, beside its plot.

const axisName = (i) => (i === 0 ? "" : String(i + 1));

function titleText(layout) {
  return layout.title && typeof layout.title === "object" ? layout.title.text : layout.title;
}

// Pixel bands of `sizes` laid end to end with `gap` between them, as [start, end] fractions of the total.
function bands(sizes, gap) {
  const total = sizes.reduce((a, b) => a + b, 0) + gap * (sizes.length - 1);
  let at = 0;
  return sizes.map((s) => { const band = [at / total, (at + s) / total]; at += s + gap; return band; });
}

// `figs` in reading order on `columns` columns. Rows take the height of their tallest part; opts.gap (pixels
// between rows) and opts.xgap (a fraction of the width between columns) leave room for the next part's labels.
export function combine(figs, opts = {}) {
  const columns = Math.max(1, Math.min(opts.columns || figs.length, figs.length));
  const rows = Math.ceil(figs.length / columns);
  const margin = (f) => ({ l: 60, r: 10, t: 40, b: 45, ...(f.layout.margin || {}) });
  const rowHeights = Array.from({ length: rows }, (_, r) =>
    Math.max(...figs.slice(r * columns, (r + 1) * columns).map((f) => f.layout.height || 320)));
  const height = rowHeights.reduce((a, b) => a + b, 0);
  const xgap = opts.xgap ?? (columns > 1 ? 0.06 : 0);
  const colWidth = (1 - xgap * (columns - 1)) / columns;
  const yBands = bands(rowHeights, 0);
  const data = [], annotations = [], shapes = [];
  const layout = {
    font: figs[0].layout.font, paper_bgcolor: figs[0].layout.paper_bgcolor, plot_bgcolor: figs[0].layout.plot_bgcolor,
    showlegend: false, height, margin: { l: margin(figs[0]).l, r: Math.max(...figs.map((f) => margin(f).r)), t: 0, b: 0 },
  };
  figs.forEach((f, i) => {
    const r = Math.floor(i / columns), c = i % columns, m = margin(f), s = axisName(i);
    const [y0, y1] = yBands[r];
    // From the top: the band's first m.t pixels hold the title, its last m.b the x tick labels.
    const top = 1 - y0 - m.t / height, bottom = 1 - y1 + m.b / height;
    const x0 = c * (colWidth + xgap), x1 = x0 + colWidth;
    layout[`xaxis${s}`] = { ...(f.layout.xaxis || {}), automargin: false, domain: [x0, x1], anchor: `y${s}` };
    layout[`yaxis${s}`] = { ...(f.layout.yaxis || {}), automargin: false, domain: [Math.max(0, bottom), Math.min(1, top)], anchor: `x${s}` };
    for (const t of f.data) {
      const trace = { ...t, xaxis: `x${s}`, yaxis: `y${s}` };
      // A colour bar beside its own plot (Plotly puts every one at the figure's right edge, on top of each other).
      if (t.type === "heatmap" && t.showscale !== false) {
        const bar = t.colorbar || {};
        // Its title turned along the bar: across, it would run into the next plot's edge labels.
        trace.colorbar = { ...bar, title: { ...(bar.title || {}), side: "right" }, x: x1 + 0.005, xanchor: "left", y: (Math.max(0, bottom) + Math.min(1, top)) / 2,
                           yanchor: "middle", len: Math.min(1, top) - Math.max(0, bottom) };
      }
      if (f.layout.showlegend === false) trace.showlegend = false;
      data.push(trace);
    }
    // A part with a legend (the parameter-free share: a line per cell type) keeps it, beside its plot.
    if (f.layout.showlegend !== false && f.data.some((t) => t.name && t.type !== "heatmap") && !layout.legend) {
      layout.showlegend = true;
      layout.legend = { x: x1 + 0.01, xanchor: "left", y: Math.min(1, top), yanchor: "top" };
    }
    const title = titleText(f.layout);
    if (title) annotations.push({ text: title, xref: "paper", yref: "paper", x: (x0 + x1) / 2, y: top, yanchor: "bottom",
                                  xanchor: "center", yshift: 8, showarrow: false, font: { size: 14 } });
    for (const sh of f.layout.shapes || []) {
      shapes.push({ ...sh, xref: sh.xref === "paper" ? `x${s} domain` : `x${s}`, yref: sh.yref === "paper" ? `y${s} domain` : `y${s}` });
    }
  });
  return { data, layout: { ...layout, annotations, shapes } };
}
