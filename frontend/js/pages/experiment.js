// One experiment: its config in brief, launch and clone, and its runs (paginated) with a compare selection.
import { api } from "../api.js";
import { ago, badge, el, errorBox } from "../dom.js";
import { headlineText, names } from "../names.js";
import { renderStudy } from "./study.js";

const PAGE = 50;

export async function render(root, { id, params }) {
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  let exp, N;
  try {
    [exp, N] = await Promise.all([api(`/api/experiments/${id}`), names()]);
  } catch (err) {
    root.append(errorBox(err));
    return;
  }
  const c = exp.config;
  const msg = el("div", { class: "message" });
  const launch = el("button", { class: "primary", onclick: async () => {
    launch.disabled = true;
    try {
      const res = await api(`/api/experiments/${id}/runs`, { method: "POST", body: {} });
      location.hash = `#/runs/${res.run.id}`;
    } catch (err) { msg.replaceChildren(errorBox(err)); launch.disabled = false; }
  } }, "Launch run");
  const cloneBtn = el("button", { onclick: async () => {
    try {
      const copy = await api(`/api/experiments/${id}/clone`, { method: "POST", body: {} });
      location.hash = `#/experiments/${copy.id}`;
    } catch (err) { msg.replaceChildren(errorBox(err)); }
  } }, "Clone");
  root.append(
    el("h1", {}, exp.name, el("span", { class: "muted" }, ` #${exp.id}`)),
    exp.description ? el("p", {}, exp.description) : null,
    el("dl", { class: "facts" },
      el("dt", {}, "method"), el("dd", {}, c.search.method),
      el("dt", {}, "space"), el("dd", {}, `${c.space.macro}, depth ${c.space.depth}, ${c.space.channels} channels, cells ${Object.keys(c.space.cells).join("/")}`),
      el("dt", {}, "data"), el("dd", {}, c.data.source === "prepared" ? c.data.path : `synthetic ${c.data.num_tiles} × ${c.data.tile_size} px`),
      el("dt", {}, "budget"), el("dd", {}, N.discrete.has(c.search.method)
        ? `${c.search.trials} trials × ${c.search.trial_epochs} epochs` : `${c.search.epochs} epochs`),
      el("dt", {}, "launcher"), el("dd", {}, c.launcher.kind === "slurm"
        ? `SLURM ${c.launcher.slurm.partition || "(default partition)"}, ${c.launcher.slurm.nodes} node(s)` : `local, ${c.launcher.processes} process(es)`),
      el("dt", {}, "repeats"), el("dd", {}, (c.repeats || 1) > 1 ? `${c.repeats} seeds (${c.seed} to ${c.seed + c.repeats - 1})` : `1 (seed ${c.seed})`),
      el("dt", {}, "baseline"), el("dd", {}, !c.baseline.random ? "none"
        : (c.repeats || 1) > 1 ? "random search, one per seed, at equal compute" : `random search × ${c.baseline.seeds} seeds`)),
    el("div", { class: "toolbar" }, launch, el("a", { class: "button", href: `#/new?clone=${id}` }, "Edit as new"), cloneBtn), msg);

  // The study over seeds loads beside the runs table, not before it (backend/study.py computes it).
  const studyBox = el("div", { id: "study", class: "study" }, el("p", { class: "muted" }, "loading the study over seeds…"));
  root.append(el("h2", {}, "Study over seeds"), studyBox);
  renderStudy(studyBox, id);
  const runsBox = el("div", {});
  root.append(el("h2", {}, "Runs"), runsBox);
  let page;
  try {
    page = await api("/api/runs", { query: { experiment_id: id, limit: PAGE, offset } });
  } catch (err) { runsBox.append(errorBox(err)); return; }
  if (!page.items.length) { runsBox.append(el("p", { class: "empty" }, "No runs yet.")); return; }
  const compareBtn = el("button", { disabled: true }, "Compare selected");
  const selected = () => [...runsBox.querySelectorAll("input.pick:checked")].map((b) => b.value);
  const onPick = () => { const n = selected().length; compareBtn.disabled = n < 2 || n > 4; };
  compareBtn.addEventListener("click", () => { location.hash = `#/compare?runs=${selected().join(",")}`; });
  runsBox.append(runTable(page.items, onPick), el("div", { class: "pager" },
    el("button", { disabled: offset === 0, onclick: () => { location.hash = `#/experiments/${id}?offset=${Math.max(0, offset - PAGE)}`; } }, "‹ previous"),
    el("span", { class: "muted" }, `${offset + 1}–${Math.min(offset + PAGE, page.total)} of ${page.total}`),
    el("button", { disabled: offset + PAGE >= page.total, onclick: () => { location.hash = `#/experiments/${id}?offset=${offset + PAGE}`; } }, "next ›")),
    el("div", { class: "toolbar" }, compareBtn, el("span", { class: "muted" }, "pick two to four runs")));
}

export function runTable(runs, onPick) {
  return el("table", { class: "list" },
    el("thead", {}, el("tr", {}, ...["", "run", "kind", "method", "status", "progress", "IoU", "created"].map((h) => el("th", {}, h)))),
    el("tbody", {}, runs.map((r) => el("tr", { "data-run": r.id },
      el("td", {}, onPick ? el("input", { type: "checkbox", class: "pick", value: r.id, onchange: onPick, "aria-label": `select run ${r.id}` }) : ""),
      el("td", {}, el("a", { href: `#/runs/${r.id}` }, `run ${r.id}`)),
      el("td", { class: "kind" }, r.kind, r.baseline_of ? ` of ${r.baseline_of}` : "",
        // A retrain run names its parent, so it reads beside the search whose cell it retrains.
        r.parent_run_id ? el("span", {}, " of ", el("a", { href: `#/runs/${r.parent_run_id}` }, `run ${r.parent_run_id}`)) : ""),
      el("td", {}, r.method),
      el("td", {}, badge(r.status)),
      el("td", {}, el("progress", { max: 1, value: r.progress || 0 })),
      el("td", { class: "headline muted" }, headlineText(r.headline)),
      el("td", { class: "muted" }, ago(r.created_at))))));
}
