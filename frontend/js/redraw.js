// Redrawing a figure that is already on the page with the least work Plotly offers: a live run changes a few data
// arrays per event, and Plotly.react re-lays out the whole plot for any layout change (a title with the epoch in
// it) and re-renders every trace. Here the layout and each trace's style are compared first; when only data arrays
// changed, lines that only grew are extended (Plotly.extendTraces) and other arrays restyled (Plotly.restyle).
// Anything else falls back to Plotly.react. python -m bench ui_alpha_history times this path.

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

// What to do to turn the drawn `old` figure into `fig`: {react} | {restyle: [[update, index]], extend, title}.
export function plan(old, fig) {
  if (!old || old.data.length !== fig.data.length || old.layoutKey !== layoutKey(fig.layout)) return { react: true };
  const title = old.title !== titleText(fig.layout) ? titleText(fig.layout) : undefined;
  const restyle = [], extend = { x: [], y: [], indices: [] };
  for (let i = 0; i < fig.data.length; i++) {
    const a = old.data[i], b = fig.data[i];
    if (old.styleKeys[i] !== styleKey(b)) return { react: true };
    const changed = ARRAYS.filter((k) => !sameArray(a[k], b[k]));
    if (!changed.length) continue;
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

// Draw `fig` into `div` (first time: Plotly.react); returns which path was taken, for the tests and the bench.
export function redraw(div, fig, config) {
  const Plotly = window.Plotly;
  const p = plan(div._nfDrawn, fig);
  let how = "none";
  if (p.react) {
    Plotly.react(div, fig.data, fig.layout, config);
    how = "react";
  } else {
    if (p.extend.indices.length) { Plotly.extendTraces(div, { x: p.extend.x, y: p.extend.y }, p.extend.indices); how = "extend"; }
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
    if (!groups.size && p.title !== undefined) { Plotly.relayout(div, layout); if (how === "none") how = "relayout"; }
    let first = true;
    for (const g of groups.values()) {
      Plotly.update(div, g.update, first ? layout : {}, g.indices);
      first = false;
      how = "restyle";
    }
  }
  // Plotly keeps references to the arrays it was given: copies, so the next comparison sees what is drawn.
  div._nfDrawn = { data: fig.data.map((t) => Object.fromEntries(ARRAYS.filter((k) => k in t).map((k) => [k, Array.isArray(t[k]) ? t[k].slice() : t[k]]))),
                   styleKeys: fig.data.map(styleKey), layoutKey: layoutKey(fig.layout), title: titleText(fig.layout) };
  return how;
}
