// Experiments: a table the server filters (text, method, owner, run status), sorts and pages, so a thousand
// experiments cost one page of rows; each row has its runs by status and its best run's headline IoU beside its
// random baselines'. The filters, sort and page are in the URL (#/experiments?q=&method=&sort=-iou&offset=50).
import { api } from "../api.js";
import { ago, badge, el, errorBox } from "../dom.js";
import { names } from "../names.js";
import { choice, iouCell, numberCell, pager, table } from "../tables.js";
import { go } from "../urlstate.js";

const PAGE = 25;
const DEFAULTS = { sort: "-id", offset: 0 };
const FILTERS = ["q", "method", "owner", "status"];

export async function render(root, { params }) {
  const state = { sort: params.get("sort") || DEFAULTS.sort, offset: Math.max(0, Number(params.get("offset")) || 0) };
  for (const f of FILTERS) state[f] = params.get(f) || "";
  const show = (changes) => go("#/experiments", { ...state, ...changes }, DEFAULTS);
  const N = await names().catch(() => ({ methods: [], run_statuses: [] }));
  const form = el("form", { class: "toolbar filters", onsubmit: (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    show({ ...Object.fromEntries(FILTERS.map((k) => [k, String(f.get(k) || "").trim()])), offset: 0 });
  } },
  el("input", { type: "search", name: "q", placeholder: "filter by name or description", value: state.q, "aria-label": "text" }),
  choice("method", "method", N.methods, state.method),
  el("input", { type: "search", name: "owner", placeholder: "owner (user name)", value: state.owner, size: 14, "aria-label": "owner" }),
  choice("status", "has a run", N.run_statuses, state.status),
  el("button", { type: "submit" }, "Filter"), el("a", { class: "button primary", href: "#/new", id: "new-experiment" }, "New experiment"));
  const body = el("div", {}, el("p", { class: "muted" }, "loading…"));
  root.append(el("h1", {}, "Experiments"), form, body);

  let page;
  try {
    page = await api("/api/experiments", { query: { ...Object.fromEntries(FILTERS.map((k) => [k, state[k]])), sort: state.sort,
                                                     limit: PAGE, offset: state.offset } });
  } catch (err) {
    body.replaceChildren(errorBox(err));
    return;
  }
  if (!page.items.length) {
    const filtered = FILTERS.some((k) => state[k]);
    body.replaceChildren(el("p", { class: "empty" }, filtered ? "No experiment matches these filters." : "No experiments yet. ",
      filtered ? "" : el("a", { href: "#/new" }, "Create one")));
    return;
  }
  const cols = [
    { label: "#", sort: "id", cell: (e) => String(e.id) },
    { label: "name", sort: "name", ascFirst: true, cell: (e) => el("a", { href: `#/experiments/${e.id}` }, e.name) },
    { label: "method", sort: "method", ascFirst: true, cell: (e) => e.config?.search?.method || "" },
    { label: "data", cell: (e) => e.config?.data?.source === "prepared" ? e.config.data.path : "synthetic" },
    { label: "epochs", sort: "epochs", title: "search budget (a discrete search: trials × trial epochs)", cell: (e) => e.epochs ?? "—" },
    { label: "runs", sort: "runs", class: "badges", cell: (e) => Object.entries(e.run_counts || {}).filter(([, n]) => n > 0)
      .map(([s, n]) => el("span", {}, badge(s), ` ${n}`)) },
    { label: "best IoU", sort: "iou", class: "headline", title: "the best headline IoU among its search and retrain runs",
      cell: (e) => e.best_run_id ? el("a", { href: `#/runs/${e.best_run_id}` }, iouCell(e.best)) : iouCell(e.best) },
    { label: "random", sort: "baseline_iou", class: "baseline", title: "mean headline IoU of its random baselines",
      cell: (e) => numberCell(e.baseline_iou) },
    { label: "created", sort: "created", cell: (e) => el("span", { class: "muted" }, ago(e.created_at)) },
  ];
  body.replaceChildren(table(cols, page.items, { sort: state.sort, onSort: (sort) => show({ sort, offset: 0 }),
                                                 rowAttrs: (e) => ({ "data-id": e.id }) }),
                       pager(page, (offset) => show({ offset })));
}
