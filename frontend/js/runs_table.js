// An experiment's runs as a table the server filters (status, method, kind, text), sorts (any column, the headline
// IoU included) and pages; picking two to four runs opens the comparison. Its state is in the URL: changing a
// filter, the sort or the page redraws the table in place and pushes a history entry, so back returns to it.
import { api } from "./api.js";
import { ago, badge, el, errorBox } from "./dom.js";
import { choice, computeCell, countCell, iouCell, numberCell, pager, table } from "./tables.js";
import { push } from "./urlstate.js";

const PAGE = 50;
export const RUNS_DEFAULTS = { sort: "-id", offset: 0 };
const FILTERS = ["status", "method", "kind", "q"];

function columns(onPick) {
  return [
    { label: "", cell: (r) => el("input", { type: "checkbox", class: "pick", value: r.id, onchange: onPick, "aria-label": `select run ${r.id}` }) },
    { label: "run", sort: "id", cell: (r) => el("a", { href: `#/runs/${r.id}` }, `run ${r.id}`) },
    { label: "kind", sort: "kind", ascFirst: true, class: "kind", cell: (r) => [r.kind, r.baseline_of ? ` of ${r.baseline_of}` : "",
      // A retrain run names its parent, so it reads beside the search whose cell it retrains.
      r.parent_run_id ? el("span", {}, " of ", el("a", { href: `#/runs/${r.parent_run_id}` }, `run ${r.parent_run_id}`)) : ""] },
    // A hand-designed baseline is named by its network (`resnext-unet c16 d3 ...`), whose name is its method.
    { label: "method", sort: "method", ascFirst: true, cell: (r) => (r.network ? r.network.label : r.method) },
    { label: "status", sort: "status", ascFirst: true, cell: (r) => badge(r.status) },
    { label: "progress", cell: (r) => el("progress", { max: 1, value: r.progress || 0 }) },
    { label: "IoU", sort: "iou", class: "headline", title: "the run's headline IoU (hover a value for what it is)", cell: (r) => iouCell(r.headline) },
    { label: "random", sort: "baseline_iou", class: "baseline", title: "mean headline IoU of the run's random baselines",
      cell: (r) => (r.baseline_runs ? numberCell(r.baseline_iou) : "") },
    { label: "epochs", sort: "epochs", title: "budget: epochs as configured (a discrete search: trials × trial epochs)",
      cell: (r) => (r.budget && r.budget.epochs != null ? String(r.budget.epochs) : "—") },
    { label: "compute", sort: "compute_s", title: "budget: wall-clock time the run has run", cell: (r) => computeCell(r.budget) },
    { label: "params", sort: "params", title: "parameters of the evaluated network", cell: (r) => countCell(r.params) },
    { label: "created", sort: "created", cell: (r) => el("span", { class: "muted" }, ago(r.created_at)) },
  ];
}

// Renders into `box` and returns a function that redraws it; `params` are the page's URL params.
export function runsTable(box, { experimentId, params, names: N }) {
  const state = { sort: params.get("sort") || RUNS_DEFAULTS.sort, offset: Math.max(0, Number(params.get("offset")) || 0) };
  for (const f of FILTERS) state[f] = params.get(f) || "";
  const compareBtn = el("button", { type: "button", disabled: true, id: "compare-selected" }, "Compare selected");
  const selected = () => [...box.querySelectorAll("input.pick:checked")].map((b) => b.value);
  const onPick = () => { const n = selected().length; compareBtn.disabled = n < 2 || n > 4; };
  compareBtn.addEventListener("click", () => { location.hash = `#/compare?runs=${selected().join(",")}`; });
  const filters = el("form", { class: "toolbar filters", id: "run-filters", onsubmit: (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    update({ ...Object.fromEntries(FILTERS.map((k) => [k, String(f.get(k) || "").trim()])), offset: 0 });
  } },
  choice("status", "status", N.run_statuses, state.status), choice("method", "method", N.methods, state.method),
  choice("kind", "kind", N.run_kinds, state.kind),
  el("input", { type: "search", name: "q", value: state.q, placeholder: "text: reason, job id, run id", "aria-label": "text" }),
  el("button", { type: "submit" }, "Filter"));
  const body = el("div", {}, el("p", { class: "muted" }, "loading…"));
  box.append(filters, body, el("div", { class: "toolbar" }, compareBtn, el("span", { class: "muted" }, "pick two to four runs")));

  let generation = 0;
  async function load() {
    const mine = ++generation;
    let page;
    try {
      page = await api("/api/runs", { query: { experiment_id: experimentId, ...Object.fromEntries(FILTERS.map((k) => [k, state[k]])),
                                                sort: state.sort, limit: PAGE, offset: state.offset } });
    } catch (err) { body.replaceChildren(errorBox(err)); return; }
    if (mine !== generation) return;  // a newer sort or filter was asked for meanwhile
    onPick();
    if (!page.items.length) {
      body.replaceChildren(el("p", { class: "empty" }, FILTERS.some((k) => state[k]) ? "No run matches these filters." : "No runs yet."));
      return;
    }
    body.replaceChildren(table(columns(onPick), page.items, { sort: state.sort, onSort: (sort) => update({ sort, offset: 0 }),
                                                            rowAttrs: (r) => ({ "data-run": r.id }) }),
                         pager(page, (offset) => update({ offset })));
    box.dataset.loaded = String(Number(box.dataset.loaded || 0) + 1);
  }
  function update(changes) {
    Object.assign(state, changes);
    push(Object.fromEntries(Object.keys(changes).map((k) => [k, state[k]])), RUNS_DEFAULTS);
    return load();
  }
  load();
  return load;
}
