// Small DOM helpers shared by the pages: element builder, status badges, times, Plotly drawing.
import { redraw } from "./redraw.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  return node;
}

export function badge(status) {
  return el("span", { class: `badge status-${status}`, "data-status": status }, status);
}

export function ago(iso) {
  if (!iso) return "";
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 60) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

export function duration(s) {
  if (s == null || !Number.isFinite(s)) return "";
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

// Not Plotly's `responsive`: it resizes through Plots.resize, as the observer below used to (see there). No drag
// handles on the axes' ends: Plotly builds them anew for every subplot on every redraw, a tenth of a live redraw
// of the alpha history (python -m bench ui_alpha_history); zoom by dragging a box and double-click still work.
const PLOT_CONFIG = { displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"], showAxisDragHandles: false };

// Plotly sizes a plot once, to its box at that moment; grids reflow as plots are added, so follow the box's width.
// Only the width: Plots.resize autosizes the height too, to the box that the plot itself gives its height, and a
// figure of stacked subplots (js/subplots.js, 800 px) shrank to the box's CSS min-height.
const resizer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver((entries) => {
  for (const e of entries) {
    const gd = e.target, width = Math.round(e.contentRect.width);
    if (gd.data && gd._fullLayout && width > 0 && Math.abs(gd._fullLayout.width - width) > 1) {
      window.Plotly.relayout(gd, { width }).catch(() => {});
    }
  }
});

// Redrawing the same div on every update costs only what changed (js/redraw.js: animate, restyle, extendTraces or
// react). Returns a promise of the drawing: lines moved by Plotly.animate are drawn on the next animation frame.
export function draw(div, fig) {
  if (!window.Plotly) { div.textContent = "Plotly.js did not load (/vendor/plotly.min.js)"; return Promise.resolve(); }
  const first = !div.data;
  redraw(div, fig, PLOT_CONFIG);
  if (first && resizer) resizer.observe(div);
  div.dataset.drawn = String(Number(div.dataset.drawn || 0) + 1);
  return div._nfDone;
}

export function errorBox(err) {
  return el("div", { class: "error", role: "alert" }, err && err.message ? err.message : String(err));
}
