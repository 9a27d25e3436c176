// One experiment: its config in brief, launch and clone (disabled, saying why, for a token that may not), and
// its runs table (js/runs_table.js).
import { guard, me } from "../access.js";
import { api } from "../api.js";
import { el, errorBox } from "../dom.js";
import { names } from "../names.js";
import { runsTable } from "../runs_table.js";
import { renderStudy } from "./study.js";

export async function render(root, { id, params }) {
  let exp, N;
  try {
    [exp, N] = await Promise.all([api(`/api/experiments/${id}`), names()]);
  } catch (err) {
    root.append(errorBox(err));
    return;
  }
  const c = exp.config;
  const nets = c.baseline.networks || [];
  const launched = Number(params.get("launched")) || 0;
  const msg = el("div", { class: "message", id: "launch-message" }, launched ? `${launched} searches launched, one per seed, `
    + "each with its random baseline at equal compute: the study below fills in as they finish." : "");
  const launch = el("button", { class: "primary", onclick: async () => {
    launch.disabled = true;
    try {
      const res = await api(`/api/experiments/${id}/runs`, { method: "POST", body: {} });
      // A study over seeds stays here, where its seeds are set side by side; one search opens its run page.
      location.hash = res.repeats && res.repeats.length ? `#/experiments/${id}?launched=${res.repeats.length}&t=${Date.now()}` : `#/runs/${res.run.id}`;
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
      el("dt", {}, "baseline"), el("dd", { id: "baseline-fact" }, [!c.baseline.random ? (nets.length ? "" : "none")
        : (c.repeats || 1) > 1 ? "random search, one per seed, at equal compute" : `random search × ${c.baseline.seeds} seeds`,
        // Each hand-designed network trains beside every search of a launch; the runs table names it in full.
        nets.length ? `${c.baseline.random ? "; " : ""}hand-designed: ${nets.map((n) => n.name).join(", ")}, trained beside each search` : ""].join(""))),
    el("div", { class: "toolbar" }, launch, el("a", { class: "button", href: `#/new?clone=${id}` }, "Edit as new"), cloneBtn), msg);

  // The study over seeds loads beside the runs table, not before it (backend/study.py computes it).
  const studyBox = el("div", { id: "study", class: "study" }, el("p", { class: "muted" }, "loading the study over seeds…"));
  root.append(el("h2", {}, "Study over seeds"), studyBox);
  renderStudy(studyBox, id);
  const runsBox = el("div", { id: "runs" });
  root.append(el("h2", {}, "Runs"), runsBox);
  runsTable(runsBox, { experimentId: id, params, names: N });
  // What this token may do here: disabled with the reason in the tooltip, not refused after the click.
  const who = await me();
  guard(launch, who, "write", exp.owner_id);
  guard(cloneBtn, who, "write");
}
