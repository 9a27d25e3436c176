// The list tables' shared parts: sortable headers (the server sorts: `sort=key` or `sort=-key`), the pager, filter
// controls, and how a headline IoU and a budget read in a cell. The state lives in the URL (js/urlstate.js).
import { duration, el } from "./dom.js";
import { BACKGROUND_ONLY } from "./names.js";

// A header cell; clicking a sortable one sorts by it, descending first for numbers, and again to flip.
function header(col, sort, onSort) {
  if (!col.sort) return el("th", { title: col.title }, col.label);
  const active = sort.replace(/^-/, "") === col.sort;
  const desc = sort.startsWith("-");
  const next = active ? (desc ? col.sort : `-${col.sort}`) : (col.ascFirst ? col.sort : `-${col.sort}`);
  return el("th", { "data-sort": col.sort, "aria-sort": active ? (desc ? "descending" : "ascending") : "none", title: col.title },
    el("button", { type: "button", class: "sort", onclick: () => onSort(next) }, col.label, active ? (desc ? " ▼" : " ▲") : ""));
}

// cols: [{label, sort?, ascFirst?, title?, cell(row) -> node|string, class?}]
export function table(cols, rows, { sort = "", onSort = () => {}, rowAttrs = () => ({}) } = {}) {
  return el("table", { class: "list" },
    el("thead", {}, el("tr", {}, cols.map((c) => header(c, sort, onSort)))),
    el("tbody", {}, rows.map((r) => el("tr", rowAttrs(r), cols.map((c) => el("td", { class: c.class }, c.cell(r)))))));
}

export function pager(page, onOffset) {
  const { offset, limit, total } = page;
  const last = Math.min(offset + limit, total);
  return el("div", { class: "pager" },
    el("button", { type: "button", disabled: offset === 0, onclick: () => onOffset(Math.max(0, offset - limit)) }, "‹ previous"),
    el("span", { class: "muted" }, total ? `${offset + 1}–${last} of ${total}` : "0 of 0"),
    el("button", { type: "button", disabled: last >= total, onclick: () => onOffset(offset + limit) }, "next ›"));
}

// A <select> of `values` with an "any" first; `name` is the query parameter it sets.
export function choice(name, label, values, current) {
  return el("select", { name, "aria-label": label },
    el("option", { value: "" }, `${label}: any`),
    values.map((v) => el("option", { value: v, selected: v === current }, v)));
}

// The headline IoU in a cell: the number, with what it is in the tooltip (backend/headline.py names it).
export function iouCell(h) {
  if (!h || typeof h.value !== "number") return el("span", { class: "muted", title: h && h.label ? h.label : "no IoU yet" }, "—");
  return el("span", { class: `iou${h.background_only ? " background-only" : ""}`, title: h.label, "data-value": String(h.value) },
    h.value.toFixed(3), h.background_only ? el("span", { class: "warn-text" }, ` ${BACKGROUND_ONLY}`) : "");
}

export function numberCell(v, digits = 3) {
  return typeof v === "number" ? v.toFixed(digits) : el("span", { class: "muted" }, "—");
}

// 1234567 -> "1.23 M": parameter counts span five orders of magnitude across spaces.
export function countCell(n) {
  if (typeof n !== "number") return el("span", { class: "muted" }, "—");
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

export function computeCell(budget) {
  return budget && budget.compute_s != null ? duration(budget.compute_s) : el("span", { class: "muted" }, "—");
}
