// Redrawing a figure that is already on the page with the least work Plotly offers: a live run changes a few data
// arrays per event, and Plotly.react re-lays out the whole plot for any layout change (a title with the epoch in
// it) and re-renders every trace. Here the layout and each trace's style are compared first; when only data arrays
// changed, lines that only grew are extended (Plotly.extendTraces) and other arrays restyled (Plotly.restyle).
// In a figure of lines only, new data is moved in by Plotly.animate without a transition or a redraw: it redraws the
// lines' paths and leaves the axes, grid, titles and legend as they are, where restyle and extendTraces redraw the
// whole figure (the alpha history, 4 plots of lines: 30 ms instead of 80). Axis ranges must then come from the
// layout (figures.js epochAxis), since nothing recomputes them. Anything else falls back to Plotly.react.
// python -m bench ui_alpha_history times this path.

const ARRAYS = ["x", "y", "z", "text", "customdata", "base"];

function styleKey(trace) {
  const rest = {};
  for (const [k, v] of Object.entries(trace)) if (!ARRAYS.includes(k)) rest[k] = v;
  return JSON.stringify(rest);
}

function sameArray(a, b) {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (x === y) continue;
    if (Array.isArray(x) && sameArray(x, y)) continue;
    return false;
  }
  return true;
}

// The new points when `next` is `prev` with points appended (same values in front), else null.
function grown(prev, next) {
  if (!Array.isArray(prev) || !Array.isArray(next) || next.length <= prev.length) return null;
  for (let i = 0; i < prev.length; i++) if (prev[i] !== next[i]) return null;
  return next.slice(prev.length);
}

// The layout without its title's text: a title that names the epoch changes every frame, and relayout of the
// title alone is cheap, where any other layout change re-lays out the plot.
function layoutKey(layout) {
  const title = layout.title && typeof layout.title === "object" ? { ...layout.title, text: undefined } : layout.title;
  return JSON.stringify({ ...layout, title });
}

const titleText = (layout) => (layout.title && typeof layout.title === "object" ? layout.title.text : layout.title);

// Only these arrays of a line plot's traces are moved by Plotly.animate; any other change restyles.
const ANIMATED = ["x", "y", "customdata"];

// Whether every axis that `fig`'s traces use has its range in the layout: Plotly.animate leaves axes as they are.
function rangesFixed(fig) {
  const axis = (id) => fig.layout[`${id[0]}axis${id.slice(1)}`];
  return fig.data.every((t) => [t.xaxis || "x", t.yaxis || "y"].every((id) => {
    const a = axis(id);
    return a && Array.isArray(a.range) && a.autorange !== true;
  }));
}

// What to do to turn the drawn `old` figure into `fig`:
// {react} | {animate: {data, traces}} | {restyle: [[update, index]], extend, title}.
export function plan(old, fig) {
  if (!old || old.data.length !== fig.data.length || old.layoutKey !== layoutKey(fig.layout)) return { react: true };
  const title = old.title !== titleText(fig.layout) ? titleText(fig.layout) : undefined;
  const changes = [];  // [index, the arrays that changed]
  for (let i = 0; i < fig.data.length; i++) {
    if (old.styleKeys[i] !== styleKey(fig.data[i])) return { react: true };
    const changed = ARRAYS.filter((k) => !sameArray(old.data[i][k], fig.data[i][k]));
    if (changed.length) changes.push([i, changed]);
  }
  const animated = title === undefined && changes.length && fig.data.every((t) => t.type === "scatter") && rangesFixed(fig)
    && changes.every(([, changed]) => changed.every((k) => ANIMATED.includes(k)));
  if (animated) {
    return { animate: { data: changes.map(([i, changed]) => Object.fromEntries(changed.map((k) => [k, fig.data[i][k]]))),
                        traces: changes.map(([i]) => i) } };
  }
  const restyle = [], extend = { x: [], y: [], indices: [] };
  for (const [i, changed] of changes) {
    const a = old.data[i], b = fig.data[i];
    const line = b.type === "scatter" && changed.every((k) => k === "x" || k === "y");
    const dx = line ? grown(a.x, b.x) : null, dy = line ? grown(a.y, b.y) : null;
    if (dx && dy && dx.length === dy.length) {
      extend.x.push(dx); extend.y.push(dy); extend.indices.push(i);
      continue;
    }
    const update = {};
    for (const k of changed) update[k] = [b[k]];
    restyle.push([update, i]);
  }
  return { restyle, extend, title };
}

const NO_TRANSITION = { transition: { duration: 0 }, frame: { duration: 0, redraw: false }, mode: "immediate" };

// Draw `fig` into `div` (first time: Plotly.react); returns which path was taken, for the tests and the bench, and
// sets div._nfDone to a promise of the drawing (Plotly.animate draws on the next animation frame).
export function redraw(div, fig, config) {
  const Plotly = window.Plotly;
  const p = plan(div._nfDrawn, fig);
  // Taken before Plotly sees the figure: it writes into the layout and traces it is given (uid, autorange), and
  // keeps references to their arrays, so keys taken after it never matched the next figure's. Copies of the arrays.
  const drawn = { data: fig.data.map((t) => Object.fromEntries(ARRAYS.filter((k) => k in t).map((k) => [k, Array.isArray(t[k]) ? t[k].slice() : t[k]]))),
                  styleKeys: fig.data.map(styleKey), layoutKey: layoutKey(fig.layout), title: titleText(fig.layout) };
  let how = "none", done;
  if (p.react) {
    done = Plotly.react(div, fig.data, fig.layout, config);
    how = "react";
  } else if (p.animate) {
    done = Plotly.animate(div, p.animate, NO_TRANSITION);
    how = "animate";
  } else {
    if (p.extend.indices.length) { done = Plotly.extendTraces(div, { x: p.extend.x, y: p.extend.y }, p.extend.indices); how = "extend"; }
    // One Plotly.update for every restyled trace and the title: each call redraws, so calls are what costs.
    const groups = new Map();
    for (const [update, i] of p.restyle) {
      const key = Object.keys(update).sort().join(",");
      if (!groups.has(key)) groups.set(key, { update: Object.fromEntries(Object.keys(update).map((k) => [k, []])), indices: [] });
      const g = groups.get(key);
      for (const [k, v] of Object.entries(update)) g.update[k].push(v[0]);
      g.indices.push(i);
    }
    const layout = p.title !== undefined ? { "title.text": p.title } : {};
    if (!groups.size && p.title !== undefined) { done = Plotly.relayout(div, layout); if (how === "none") how = "relayout"; }
    let first = true;
    for (const g of groups.values()) {
      done = Plotly.update(div, g.update, first ? layout : {}, g.indices);
      first = false;
      how = "restyle";
    }
  }
  div._nfDrawn = drawn;
  div._nfHow = how;
  div._nfDone = Promise.resolve(done);
  return how;
}
