// Run: status and progress, then the search as it happens: alpha heatmaps with an epoch slider, entropy, the
// parameter-free share with the collapse warning, loss and IoU, the decoded cell, and the evaluation; the run's
// headline IoU as the server states it, "retrain this cell" for a run with a genotype, and "where to search first"
// for a finished hand-designed run (js/block_diagram.js).
import { guard, me } from "../access.js";
import { allEvents, api } from "../api.js";
import { sensitivityPanel } from "../block_diagram.js";
import { ago, badge, draw, duration, el, errorBox } from "../dom.js";
import { showUse } from "../evaluation.js";
import * as alphaView from "../alpha_view.js";
import * as fig from "../figures.js";
import { RunFollower, throttle } from "../live.js";
import { headlineText, names } from "../names.js";
import { applyEvents, createRunState, frameAtEpoch, latestGenotype, prEvaluation, progressLine } from "../runstate.js";
import { push, replace } from "../urlstate.js";

const TABS = [["alpha", "Alpha"], ["training", "Loss and IoU"], ["cell", "Cell graph"], ["evaluation", "Evaluation"], ["log", "Log"]];

// The view in the URL (js/urlstate.js): #/runs/ID?tab=cell&epoch=7&scale=relative; left out when default.
const VIEW_DEFAULTS = { tab: "alpha", scale: "absolute" };

export async function render(root, { id, params }) {
  let run, N;
  try {
    [run, N] = await Promise.all([api(`/api/runs/${id}`), names()]);
  } catch (err) {
    root.append(errorBox(err));
    return;
  }
  const state = createRunState();
  const ui = layout(root, run);
  const owner = api(`/api/experiments/${run.experiment_id}`).catch(() => ({ owner_id: null }));
  const sensitivity = sensitivityPanel(run, Promise.all([me(), owner.then((exp) => exp.owner_id)]));
  ui.warnings.before(sensitivity.root);
  // A discrete search (random, evolution, REINFORCE) has no alpha: it opens on its candidates.
  const discrete = N.discrete.has(run.method);
  const TERMINAL = N.terminal;
  let tab = "alpha", live = true, frame = -1, playing = null, baselineCandidates = null, baselinesAt = -Infinity;
  // A shared URL's epoch is shown once the history has loaded; until then there is no frame to pick.
  let wantEpoch = params.has("epoch") ? Number(params.get("epoch")) : null;
  if (wantEpoch !== null) { live = false; ui.live.checked = false; }
  if (fig.COLOUR_SCALES[params.get("scale")]) ui.scale.value = params.get("scale");
  // A queued baseline waits for its search: its reason follows the search's live status, not the worker's last word.
  let searchStatus = null;

  const header = () => {
    const reason = searchStatus && run.status === "queued"
      ? `waiting for search run ${run.baseline_of} (${searchStatus}) to succeed: the baseline gets its measured compute as its budget`
      : run.status_reason;
    ui.status.replaceChildren(badge(run.status), reason ? el("span", { class: "reason" }, ` ${reason}`) : "",
      run.job_id ? el("span", { class: "muted" }, ` · SLURM job ${run.job_id}`) : "",
      run.attempt > 1 ? el("span", { class: "muted" }, ` · attempt ${run.attempt}`) : "",
      el("span", { class: "muted" }, ` · ${run.launcher} · created ${ago(run.created_at)}`));
    // The stage now running, its epochs counted from 1 (runstate.progressLine); the ETA is the search's own.
    const line = progressLine(state, run, TERMINAL.has(run.status));
    if (line.fraction === null) ui.bar.removeAttribute("value"); else ui.bar.value = line.fraction;
    const p = state.progress || {};
    const eta = line.text.startsWith("search ·") && p.eta_s != null ? `ETA ${duration(p.eta_s)}` : "";
    ui.progressText.textContent = [line.text, eta].filter(Boolean).join(" · ");
    ui.progressText.dataset.stage = TERMINAL.has(run.status) ? run.status : (state.stage || p.stage || "");
    ui.cancel.hidden = TERMINAL.has(run.status);
    ui.retry.hidden = !N.retriable.has(run.status);
    sensitivity.update(run);
    ui.headline.textContent = headlineText(run.headline);
    ui.headline.dataset.value = run.headline && typeof run.headline.value === "number" ? String(run.headline.value) : "";
    // A cell to retrain: a finished search's decoded genotype, a discrete search's best candidate, a retrain's input.
    ui.retrain.hidden = !(run.genotype || latestGenotype(state) || state.candidates.some((c) => c.genotype));
    const warnings = fig.collapseWarnings(state);
    ui.warnings.replaceChildren(...warnings.map((w) => el("div", { class: "warning", role: "alert", "data-cell": w.cell }, `⚠ ${w.message}`)));
  };

  // Scrubbing redraws only the heatmaps; the history lines change only when events arrive. While following a live
  // run (or playing) the cells carry no printed numbers, which change every frame anyway: hover shows them, and a
  // still frame (scrubbed, paused, or a finished run) prints them.
  const drawAlpha = (lines = true) => {
    const n = state.alpha.frames.length;
    ui.slider.max = String(Math.max(0, n - 1));
    if (wantEpoch !== null && n) { frame = Math.max(0, frameAtEpoch(state, wantEpoch)); wantEpoch = null; }
    if (live || frame < 0) frame = n - 1;
    ui.slider.value = String(frame);
    const f = state.alpha.frames[frame];
    ui.frameLabel.textContent = n ? `epoch ${f.epoch ?? "?"}${f.step != null ? ` step ${f.step}` : ""} (${frame + 1}/${n})`
      : "no alpha yet: the search writes it per epoch (and every search.events_every_steps steps)";
    if (!n) return;
    // One figure for the heatmaps and one for the history lines (js/alpha_view.js): a Plotly call costs the same
    // for one plot as for several, and a live run redraws them on every event.
    const compact = Boolean(playing) || (live && !TERMINAL.has(run.status));
    draw(ui.slot(ui.heatmaps, "heatmaps-all"), alphaView.heatmapsFigure(state, frame, { scale: ui.scale.value, compact,
                                                                                    width: ui.heatmaps.clientWidth }));
    if (lines) draw(ui.slot(ui.entropy, "history"), alphaView.historyFigure(state, { width: ui.entropy.clientWidth }));
  };

  const drawCell = () => {
    const gs = state.genotypes;
    const g = latestGenotype(state);
    ui.cellNote.textContent = g ? `decoded at epoch ${gs[gs.length - 1].epoch ?? "?"} (redrawn each epoch)` : "no genotype yet: it is decoded at the end of each epoch";
    for (const [ct, cell] of Object.entries(fig.normalizeGenotype(g))) {
      draw(ui.slot(ui.cells, `cell-${ct}`), fig.cellGraph(ct, cell, { epoch: gs[gs.length - 1].epoch }));
    }
  };

  const drawEvaluation = async () => {
    const parts = [];
    const pr = prEvaluation(state);
    // A curve without points (no object predicted or none in the truth) is said in words (js/evaluation.js), not
    // drawn as blank axes.
    const prDrawn = fig.prTable(pr).some((r) => r.recall.length > 0);
    if (prDrawn) parts.push(["pr", fig.prCurves(pr)]);
    // The baselines are runs of their own, still training while this page is open: re-read them now and then.
    if (run.baselines && run.baselines.length && performance.now() - baselinesAt > 10000) {
      baselinesAt = performance.now();
      const lists = await Promise.all(run.baselines.map((b) => allEvents(b, { kind: "candidate" }).catch(() => [])));
      baselineCandidates = lists.map((evs, i) => ({ run: run.baselines[i],
        candidates: evs.map((e) => e.payload).filter((p) => p.final !== false) }));
    }
    const random = discrete ? state.candidates : (baselineCandidates || []).flatMap((b) => b.candidates);
    // The searched cell's IoU is the run's headline, named as what it is (backend/headline.py).
    const h = run.headline;
    const searched = run.kind === "search" && !discrete && h && typeof h.value === "number"
      ? [{ label: `run ${run.id} (${run.method}): ${h.label}`, iou: h.value }] : [];
    if (random.length || searched.length) parts.push(["strip", fig.searchedVsRandom(searched, random, { group: discrete ? run.method : "random" })]);
    const series = [];
    if (state.candidates.length) series.push({ name: `run ${run.id} (${run.method})`, candidates: state.candidates });
    for (const b of baselineCandidates || []) if (b.candidates.length) series.push({ name: `random, run ${b.run}`, candidates: b.candidates });
    if (series.length) parts.push(["best", fig.bestSoFar(series, { reference: searched[0] })]);
    // A discrete search's trials as its workers ran them: who trained what, busy and idle (rank 0 only dispatches).
    if (discrete && state.candidates.some((c) => typeof c.started === "number")) parts.push(["workers", fig.workerTimeline(state.candidates)]);
    ui.evalNote.textContent = parts.length || state.evaluation ? headlineText(run.headline)
      : "no evaluation yet: it follows the search (precision-recall at the IoU thresholds, searched vs random)";
    for (const [key, spec] of parts) draw(ui.slot(ui.evaluation, `eval-${key}`), spec);
    samples(ui.samples, state.evaluation);
    await showUse(ui.panels.evaluation, run, pr || state.evaluation, prDrawn);
  };

  // Which event kinds each tab shows: a heartbeat or a progress event redraws the header only.
  const NEEDS = { alpha: ["alpha"], training: ["metric"], cell: ["genotype"], evaluation: ["evaluation", "candidate", "metric"], log: ["log"] };
  const dirty = new Set();
  const drawTab = (all = true) => {
    if (!all && !NEEDS[tab].some((k) => dirty.has(k))) return;
    if (tab === "alpha") drawAlpha();
    else if (tab === "training") { if (state.metrics.length) draw(ui.slot(ui.training, "loss"), fig.lossCurves(state.metrics)); }
    else if (tab === "cell") drawCell();
    else if (tab === "evaluation") drawEvaluation().catch((err) => ui.evalNote.replaceChildren(errorBox(err)));
    else if (tab === "log") {
      ui.logEmpty.hidden = state.logs.length > 0;
      ui.log.hidden = !state.logs.length;
      ui.log.textContent = state.logs.map(logLine).join("\n");
    }
  };
  const redraw = throttle(() => { header(); drawTab(false); dirty.clear(); });
  ui.root.dataset.redraws = "0";
  const countedRedraw = () => { ui.root.dataset.redraws = String(Number(ui.root.dataset.redraws) + 1); redraw(); };

  ui.tabs.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-tab]");
    if (!b) return;
    tab = b.dataset.tab;
    if (!ev.fromUrl) push({ tab }, VIEW_DEFAULTS);
    for (const x of ui.tabs.children) x.classList.toggle("active", x === b);
    for (const [k] of TABS) ui.panels[k].hidden = k !== tab;
    drawTab();
  });
  const openTab = (k) => { const b = ui.tabs.querySelector(`[data-tab=${k}]`); if (b) b.dispatchEvent(Object.assign(new MouseEvent("click", { bubbles: true }), { fromUrl: true })); };
  if (TABS.some(([k]) => k === params.get("tab"))) openTab(params.get("tab"));
  else if (discrete) openTab("evaluation");
  // Dragging fires many input events: redraw at the same capped rate as live updates, with the newest position.
  const scrub = throttle(() => drawAlpha(false));
  // The epoch goes into the URL in place (a drag is not a history of steps); following live drops it.
  const keepEpoch = () => { const f = state.alpha.frames[frame]; if (f && f.epoch != null) replace({ epoch: f.epoch }, VIEW_DEFAULTS); };
  ui.slider.addEventListener("input", () => { live = false; ui.live.checked = false; frame = Number(ui.slider.value); scrub(); keepEpoch(); });
  ui.live.addEventListener("change", () => { live = ui.live.checked; drawAlpha(); if (live) replace({ epoch: null }, VIEW_DEFAULTS); else keepEpoch(); });
  ui.scale.addEventListener("change", () => { push({ scale: ui.scale.value }, VIEW_DEFAULTS); drawAlpha(false); });
  ui.play.addEventListener("click", () => {
    if (playing) { clearInterval(playing); playing = null; ui.play.textContent = "▶ play"; drawAlpha(false); return; }
    live = false; ui.live.checked = false;
    if (frame >= state.alpha.frames.length - 1) frame = -1;
    ui.play.textContent = "❚❚ pause";
    playing = setInterval(() => {
      if (frame >= state.alpha.frames.length - 1) {
        clearInterval(playing); playing = null; ui.play.textContent = "▶ play"; drawAlpha(false); return;
      }
      frame += 1;
      drawAlpha(false);
    }, 1000 / 5);
  });
  ui.cancel.addEventListener("click", async () => {
    try { run = await api(`/api/runs/${id}/cancel`, { method: "POST" }); header(); } catch (err) { ui.message.replaceChildren(errorBox(err)); }
  });
  ui.retry.addEventListener("click", async () => {
    try { run = await api(`/api/runs/${id}/retry`, { method: "POST" }); header(); } catch (err) { ui.message.replaceChildren(errorBox(err)); }
  });
  ui.retrain.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = new FormData(ui.retrain);
    const body = { kind: "retrain", parent_run_id: run.id, baselines: false };
    if (form.get("epochs")) body.retrain_epochs = Number(form.get("epochs"));
    if (form.get("seed") !== "") body.seed = Number(form.get("seed"));
    try {
      const res = await api(`/api/experiments/${run.experiment_id}/runs`, { method: "POST", body });
      location.hash = `#/runs/${res.run.id}`;
    } catch (err) { ui.message.replaceChildren(errorBox(err)); }
  });

  // The headline is the server's (backend/headline.py): events that can move it fetch the run again.
  const refreshHeadline = throttle(async () => { await refresh(); if (tab === "evaluation") drawTab(); }, 1000);
  const follower = new RunFollower(id, {
    onEvents: (events) => {
      if (events.some((e) => e.kind === "sensitivity")) sensitivity.measured();
      const kinds = applyEvents(state, events);
      for (const k of kinds) dirty.add(k);
      if (["evaluation", "candidate", "metric"].some((k) => kinds.has(k))) refreshHeadline();
      ui.root.dataset.lastSeq = String(state.lastSeq);
      countedRedraw();
    },
    onEnd: () => refresh(),
    onError: (err) => ui.message.replaceChildren(errorBox(err)),
  });
  // The database status (queued, pending with the SLURM reason) moves without events: poll it while active.
  const refresh = async () => {
    try {
      run = await api(`/api/runs/${id}`);
      const waiting = run.kind === "baseline" && run.baseline_of && run.status === "queued";
      searchStatus = waiting ? (await api(`/api/runs/${run.baseline_of}`)).status : null;
      header();
    } catch { /* the next tick retries */ }
  };
  const poll = setInterval(() => {
    if (!TERMINAL.has(run.status)) refresh();
    if (tab === "evaluation" && run.baselines && run.baselines.length) drawEvaluation().catch(() => {});
  }, 3000);
  header();
  if (run.kind === "baseline" && run.status === "queued") refresh();
  drawTab();  // says what is still to come on an empty run
  follower.start();
  // What this token may do: cancel, retry and retrain disabled with the missing scope named, not refused on click.
  Promise.all([me(), owner]).then(([who, exp]) => {
    for (const control of [ui.cancel, ui.retry, ui.retrain]) guard(control, who, "write", exp.owner_id);
  });
  return () => { follower.close(); clearInterval(poll); clearInterval(playing); redraw.cancel(); scrub.cancel(); refreshHeadline.cancel();
    sensitivity.stop(); };
}

function layout(root, run) {
  const panel = (k) => el("section", { class: "panel", "data-panel": k, hidden: k !== "alpha" });
  const panels = Object.fromEntries(TABS.map(([k]) => [k, panel(k)]));
  const ui = {
    root,
    status: el("div", { class: "status", id: "run-status" }),
    bar: el("progress", { max: 1, value: 0, id: "run-progress" }),
    progressText: el("span", { class: "muted", id: "run-progress-text" }),
    warnings: el("div", { class: "warnings", id: "collapse-warnings" }),
    message: el("div", {}),
    cancel: el("button", {}, "Cancel"),
    retry: el("button", {}, "Retry"),
    headline: el("span", { class: "headline", id: "run-headline" }),
    retrain: el("form", { class: "toolbar", id: "retrain-form", hidden: true },
      el("label", {}, "epochs ", el("input", { name: "epochs", type: "number", min: 1, step: 1, size: 4,
        value: (run.config.retrain || {}).epochs ?? "", "aria-label": "retrain epochs" })),
      el("label", {}, "seed ", el("input", { name: "seed", type: "number", min: 0, step: 1, size: 4,
        value: run.config.seed ?? 0, "aria-label": "retrain seed" })),
      el("button", { type: "submit", class: "primary" }, "Retrain this cell")),
    tabs: el("div", { class: "tabs", role: "tablist" }, TABS.map(([k, label], i) =>
      el("button", { type: "button", "data-tab": k, class: i === 0 ? "active" : "" }, label))),
    panels,
    slider: el("input", { type: "range", min: 0, max: 0, value: 0, step: 1, id: "epoch-slider", "aria-label": "epoch" }),
    play: el("button", { type: "button", id: "play" }, "▶ play"),
    live: el("input", { type: "checkbox", checked: true, id: "follow-live" }),
    frameLabel: el("span", { class: "muted", id: "frame-label" }),
    scale: el("select", { id: "colour-scale", "aria-label": "colour scale" },
      Object.entries(fig.COLOUR_SCALES).map(([value, label]) => el("option", { value }, label))),
    heatmaps: el("div", { class: "grid one", id: "heatmaps" }),
    entropy: el("div", { class: "grid one", id: "entropy" }),
    training: el("div", { class: "grid one", id: "training" }),
    cells: el("div", { class: "grid", id: "cells" }),
    cellNote: el("p", { class: "muted" }),
    evaluation: el("div", { class: "grid", id: "evaluation" }),
    evalNote: el("p", { class: "muted" }),
    samples: el("div", { class: "samples" }),
    log: el("pre", { class: "log", id: "run-log", hidden: true }),
    logEmpty: el("p", { class: "muted empty", id: "run-log-empty" },
      "no log lines yet: the search writes them as it goes (stages, resumes, warnings), and they appear here live"),
    slot(parent, key) {
      let d = parent.querySelector(`[data-fig="${key}"]`);
      if (!d) { d = el("div", { class: "fig", "data-fig": key, id: key }); parent.append(d); }
      return d;
    },
  };
  panels.alpha.append(el("div", { class: "toolbar" }, ui.play, ui.slider, ui.frameLabel,
    el("label", { class: "check" }, ui.live, "follow live"), ui.scale), ui.heatmaps,
    el("h3", {}, "Per-edge entropy, and the share of parameter-free ops"), ui.entropy);
  panels.training.append(ui.training);
  panels.cell.append(ui.cellNote, ui.cells);
  panels.evaluation.append(ui.evalNote, ui.evaluation, ui.samples);
  panels.log.append(ui.logEmpty, ui.log);
  root.append(
    el("h1", {}, `Run ${run.id}`, el("span", { class: "muted" }, ` · ${run.kind} · ${run.network ? run.network.label : run.method} · `),
       el("a", { href: `#/experiments/${run.experiment_id}` }, `experiment ${run.experiment_id}`),
       run.baseline_of ? el("span", {}, " · baseline of ", el("a", { href: `#/runs/${run.baseline_of}` }, `run ${run.baseline_of}`)) : "",
       run.parent_run_id ? el("span", {}, " · retrain of ", el("a", { href: `#/runs/${run.parent_run_id}` }, `run ${run.parent_run_id}`)) : ""),
    el("div", { class: "toolbar" }, ui.status, ui.cancel, ui.retry),
    el("div", { class: "toolbar" }, el("strong", {}, "IoU "), ui.headline),
    run.retrains && run.retrains.length ? el("p", { class: "muted", id: "run-retrains" }, "retrains of this cell: ",
      ...run.retrains.map((r) => el("a", { href: `#/runs/${r}`, class: "chip" }, `run ${r}`))) : "",
    ui.retrain,
    el("div", { class: "toolbar" }, ui.bar, ui.progressText),
    run.baselines && run.baselines.length ? el("p", { class: "muted" }, "random baselines: ",
      ...run.baselines.map((b) => el("a", { href: `#/runs/${b}`, class: "chip" }, `run ${b}`)),
      el("a", { href: `#/compare?runs=${[run.id, ...run.baselines.slice(0, 3)].join(",")}`, class: "chip" }, "compare")) : "",
    ui.warnings, ui.message, ui.tabs, ...Object.values(panels));
  return ui;
}

// One `log` event as a line: its time, its stage when it names one, then the message (any other payload as JSON).
function logLine(l) {
  const at = typeof l.time === "number" ? new Date(l.time * 1000).toISOString().slice(11, 19) : "";
  const { message, msg, stage, time, seq, level, ...rest } = l;
  const text = message ?? msg ?? JSON.stringify(rest);
  return [at, level && level !== "info" ? level.toUpperCase() : "", stage ? `${stage}:` : "", text].filter(Boolean).join(" ");
}

// Sample predictions overlaid on their tiles, when the evaluation carries them as images.
function samples(box, evaluation) {
  const list = evaluation && Array.isArray(evaluation.samples) ? evaluation.samples : [];
  const isImage = (s) => typeof s === "string" && /^data:image\//.test(s);
  box.replaceChildren(...list.slice(0, 12).filter((s) => isImage(s.image)).map((s) => el("figure", { class: "sample" },
    el("div", { class: "stack" }, el("img", { src: s.image, alt: "tile" }),
      isImage(s.prediction) ? el("img", { src: s.prediction, class: "overlay pred", alt: "prediction" }) : "",
      isImage(s.mask) ? el("img", { src: s.mask, class: "overlay mask", alt: "ground truth" }) : ""),
    el("figcaption", {}, s.caption || (typeof s.iou === "number" ? `IoU ${s.iou.toFixed(2)}` : "")))));
}
