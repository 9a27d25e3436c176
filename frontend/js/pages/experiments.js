// Experiments: a filtered, paginated list with each one's runs counted by status (server-side paging, so
// a thousand experiments or runs cost one page of rows).
import { api } from "../api.js";
import { ago, badge, el, errorBox } from "../dom.js";

const PAGE = 25;

export async function render(root, { params }) {
  const q = params.get("q") || "";
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const filter = el("input", { type: "search", name: "q", placeholder: "filter by name or description", value: q });
  const form = el("form", { class: "toolbar", onsubmit: (ev) => { ev.preventDefault(); go(filter.value, 0); } },
    filter, el("button", { type: "submit" }, "Filter"), el("a", { class: "button primary", href: "#/new" }, "New experiment"));
  const body = el("div", {}, el("p", { class: "muted" }, "loading…"));
  root.append(el("h1", {}, "Experiments"), form, body);

  let page;
  try {
    page = await api("/api/experiments", { query: { q, limit: PAGE, offset } });
  } catch (err) {
    body.replaceChildren(errorBox(err));
    return;
  }
  if (!page.items.length) {
    body.replaceChildren(el("p", { class: "empty" }, q ? `No experiment matches “${q}”.` : "No experiments yet. ",
      el("a", { href: "#/new" }, "Create one")));
    return;
  }
  const rows = page.items.map((e) => el("tr", { "data-id": e.id },
    el("td", {}, String(e.id)),
    el("td", {}, el("a", { href: `#/experiments/${e.id}` }, e.name)),
    el("td", {}, e.config?.search?.method || ""),
    el("td", {}, e.config?.data?.source === "prepared" ? e.config.data.path : "synthetic"),
    el("td", { class: "badges" }, Object.entries(e.run_counts || {}).filter(([, n]) => n > 0)
      .map(([s, n]) => el("span", {}, badge(s), ` ${n}`))),
    el("td", { class: "muted" }, ago(e.created_at))));
  const table = el("table", { class: "list" },
    el("thead", {}, el("tr", {}, ...["#", "name", "method", "data", "runs", "created"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
  const last = Math.min(offset + PAGE, page.total);
  const pager = el("div", { class: "pager" },
    el("button", { disabled: offset === 0, onclick: () => go(q, Math.max(0, offset - PAGE)) }, "‹ previous"),
    el("span", { class: "muted" }, `${offset + 1}–${last} of ${page.total}`),
    el("button", { disabled: last >= page.total, onclick: () => go(q, offset + PAGE) }, "next ›"));
  body.replaceChildren(table, pager);
}

function go(q, offset) {
  const p = new URLSearchParams();
  if (q) p.set("q", q);
  if (offset) p.set("offset", String(offset));
  location.hash = `#/experiments${p.toString() ? `?${p}` : ""}`;
}
