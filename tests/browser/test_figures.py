"""The figure module (frontend/js/figures.js) and the run-state fold, loaded in the real browser: specs built from
events are checked against values computed here in numpy, and the specs are drawn by Plotly and screenshotted."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.browser.conftest import shot

pytestmark = pytest.mark.browser

OPS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
EDGES = [f"{i}->{j}" for j in range(2, 6) for i in range(j)]  # the engine's edge names, DARTS topology, 14 edges


def alpha_event(seq: int, epoch: int, logits: dict[str, np.ndarray], share: dict[str, float] | None = None) -> dict:
    cells = {ct: {"alpha": a.tolist(), "beta": None, "edges": EDGES, "ops": OPS} for ct, a in logits.items()}
    payload = {"epoch": epoch, "step": epoch * 10, "cells": cells}
    if share is not None:
        payload["param_free_share"] = share
    return {"seq": seq, "time": 0, "kind": "alpha", "payload": payload}


def softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def figures(browser, static_ui):
    """One page with Plotly and the figure modules loaded (Plotly is 5 MB: parsed once for the module);
    `call(js, arg)` runs `js` with {fig, rs, live} in scope."""
    context = browser.new_context(viewport={"width": 1000, "height": 600})
    page = context.new_page()
    page.goto(f"{static_ui}/css/app.css")  # any same-origin document will do; the app shell would call the API
    page.set_content('<html><head><script src="/vendor/plotly.min.js"></script></head><body><div id="plot" '
                     'style="width:900px;height:500px"></div></body></html>')
    page.wait_for_function("() => window.Plotly !== undefined")
    page.evaluate("""async () => {
        window.fig = await import('/js/figures.js');
        window.rs = await import('/js/runstate.js');
        window.live = await import('/js/live.js');
    }""")

    def call(js: str, arg=None):
        return page.evaluate(f"(arg) => {{ const {{fig, rs, live}} = window; {js} }}", arg)

    call.page = page
    yield call
    context.close()


def test_plotly_is_served_from_the_python_package(page, static_ui):
    import plotly

    resp = page.request.get(f"{static_ui}/vendor/plotly.min.js")
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/javascript")
    version = resp.body()[:200].decode()
    assert "plotly.js v" in version, version
    # The same bytes as the installed package's bundle, not a copy in the repo.
    from backend.frontend import plotly_js_path

    assert len(resp.body()) == plotly_js_path().stat().st_size
    assert str(plotly_js_path()).startswith(str(__import__("pathlib").Path(plotly.__file__).parent))


def test_heatmap_is_the_softmax_of_alpha_with_edges_as_rows(figures, artifacts_dir):
    rng = np.random.default_rng(0)
    logits = {"normal": rng.normal(size=(14, 8)), "down": rng.normal(size=(14, 8)) * 3}
    spec = figures("""const s = rs.createRunState(); rs.applyEvents(s, [arg]);
        const spec = fig.alphaHeatmap('down', s.alpha.cells.down, 0, {frame: s.alpha.frames[0]});
        Plotly.newPlot('plot', spec.data, spec.layout); return spec;""", alpha_event(1, 0, logits))
    hm = spec["data"][0]
    assert hm["type"] == "heatmap"
    assert hm["x"] == OPS
    assert hm["y"][0] == "0→2" and hm["y"][-1] == "4→5" and len(hm["y"]) == 14
    np.testing.assert_allclose(np.array(hm["z"]), softmax(logits["down"]), atol=1e-9)
    # Absolute 0..1 by default (a near-uniform alpha looks uniform, as it is); the frame's own range on request.
    assert (hm["zmin"], hm["zmax"]) == (0, 1)
    relative = figures("""const s = rs.createRunState(); rs.applyEvents(s, [arg]);
        const h = fig.alphaHeatmap('down', s.alpha.cells.down, 0, {scale: 'relative'}).data[0]; return [h.zmin, h.zmax];""",
                       alpha_event(1, 0, logits))
    assert relative == pytest.approx([softmax(logits["down"]).min(), softmax(logits["down"]).max()])
    assert "epoch 0" in spec["layout"]["title"]["text"]
    figures.page.wait_for_selector("#plot .heatmaplayer")
    shot(figures.page, artifacts_dir, "figure-heatmap")


def test_weights_that_are_already_distributions_are_kept(figures):
    w = softmax(np.arange(14 * 8, dtype=float).reshape(14, 8) / 50)
    z = figures("const s = rs.createRunState(); rs.applyEvents(s, [arg]); return s.alpha.cells.normal.weights[0];",
                alpha_event(1, 0, {"normal": w}))
    np.testing.assert_allclose(np.array(z), w, atol=1e-12)


def test_collapse_warning_when_skip_wins_most_edges(figures):
    healthy = np.zeros((14, 8)); healthy[:, 4] = 3.0          # sep_conv_3x3 wins everywhere
    collapsed = np.zeros((14, 8)); collapsed[:10, 3] = 3.0; collapsed[10:, 5] = 3.0  # skip wins 10 of 14 edges
    pooled = np.zeros((14, 8)); pooled[:, 1] = 3.0             # max pooling everywhere: param-free, but no collapse
    events = [alpha_event(1, 0, {"normal": healthy, "up": pooled}), alpha_event(2, 1, {"normal": collapsed, "up": pooled})]
    out = figures("""const s = rs.createRunState(); rs.applyEvents(s, [arg[0]]);
        const before = fig.collapseWarnings(s); rs.applyEvents(s, [arg[1]]);
        return {before, after: fig.collapseWarnings(s), share: s.alpha.cells.normal.share,
                lines: fig.paramFreeShareLines(s)};""", events)
    assert out["before"] == []
    assert [w["cell"] for w in out["after"]] == ["normal"]
    w = out["after"][0]
    assert w["op"] == "skip_connect" and w["epoch"] == 1
    assert math.isclose(w["share"], 10 / 14)
    assert "skip_connect win 10 of 14 edges" in w["message"] and "collapse" in w["message"]
    # The share line counts every parameter-free op (pools too) ...
    assert out["share"] == [0, pytest.approx(10 / 14)]
    assert {t["name"]: t["y"] for t in out["lines"]["data"]}["up"] == [1, 1]
    # ... and uses the engine's own share (from the decoded cell) when the event carries it.
    given = figures("""const s = rs.createRunState(); rs.applyEvents(s, [arg]);
        return fig.paramFreeShareLines(s).data[0].y;""", alpha_event(1, 0, {"normal": healthy}, share={"normal": 0.75}))
    assert given == [0.75]
    # Half the edges to none is collapse as well.
    half_none = np.zeros((14, 8)); half_none[:7, 0] = 3.0; half_none[7:, 6] = 3.0
    nones = figures("""const s = rs.createRunState(); rs.applyEvents(s, [arg]); return fig.collapseWarnings(s);""",
                    alpha_event(1, 0, {"down": half_none}))
    assert [(n["cell"], n["op"]) for n in nones] == [("down", "none")]
    # Near-uniform alpha (the first steps of a search) is no collapse, whichever op leads by a hair.
    early = np.full((14, 8), 1 / 8); early[:, 3] += 0.002; early /= early.sum(1, keepdims=True)
    calm = figures("""const s = rs.createRunState(); rs.applyEvents(s, [arg]); return fig.collapseWarnings(s);""",
                   alpha_event(1, 0, {"normal": early}))
    assert calm == []


# The entropy plot draws every edge's line in one trace, apart by nulls (js/figures.js entropyLines): edge k's line.
_SEGMENT = """const segment = (f, k) => { const t = f.data[0]; const out = {x: [], y: []}; let at = 0;
          t.x.forEach((v, i) => { if (v === null) { at++; return; } if (at === k) { out.x.push(v); out.y.push(t.y[i]); } });
          return out; };"""


def test_300_epochs_of_history_are_thinned_but_keep_the_newest(figures):
    rng = np.random.default_rng(1)
    events = [alpha_event(i + 1, i, {"normal": rng.normal(size=(14, 8)), "down": rng.normal(size=(14, 8)),
                                     "up": rng.normal(size=(14, 8))}) for i in range(300)]
    out = figures("""const s = rs.createRunState(); rs.applyEvents(s, arg.events);
        """ + _SEGMENT + """
        const ent = fig.entropyLines(s, 'up'); const few = fig.entropyLines(s, 'up', {maxPoints: 50});
        const all = fig.entropyLines(s, 'up', {maxPoints: 400});
        return {n: s.alpha.frames.length, full: segment(ent, 3), few: segment(few, 3), all: segment(all, 3),
                cap: fig.ALPHA_LINE_POINTS, traces: ent.data.length, lines: ent.data[0].x.filter((v) => v === null).length + 1,
                last: s.alpha.cells.up.entropy[299][3]};""", {"events": events})
    assert out["n"] == 300 and out["traces"] == 1 and out["lines"] == 14  # one trace, a line per edge
    assert len(out["all"]["x"]) == 300  # under the cap: every epoch
    assert len(out["full"]["x"]) == out["cap"] < 300 and out["full"]["x"][-1] == 299  # the live default: thinned
    assert len(out["few"]["x"]) == 50
    assert out["few"]["x"][0] == 0 and out["few"]["x"][-1] == 299
    p = softmax(np.array(events[-1]["payload"]["cells"]["up"]["alpha"]))
    assert out["few"]["y"][-1] == pytest.approx(float(-(p[3] * np.log(p[3])).sum()))
    assert out["last"] == pytest.approx(out["few"]["y"][-1])


def test_alpha_logged_within_epochs_is_drawn_by_step(figures):
    a = np.zeros((14, 8))
    events = [alpha_event(1, 0, {"normal": a}), alpha_event(2, 0, {"normal": a}), alpha_event(3, 1, {"normal": a})]
    for i, ev in enumerate(events):
        ev["payload"]["step"] = i + 1
    out = figures("""const s = rs.createRunState(); rs.applyEvents(s, arg);
        """ + _SEGMENT + """
        const e = fig.entropyLines(s, 'normal'); return {x: segment(e, 0).x, title: e.layout.xaxis.title.text};""", events)
    assert out == {"x": [1, 2, 3], "title": "step"}
    per_epoch = figures("""const s = rs.createRunState(); rs.applyEvents(s, [arg[0], arg[2]]);
        """ + _SEGMENT + """
        const e = fig.entropyLines(s, 'normal'); return {x: segment(e, 0).x, title: e.layout.xaxis.title.text};""", events)
    assert per_epoch == {"x": [0, 1], "title": "epoch"}


def test_replayed_events_are_folded_once(figures):
    ev = [alpha_event(1, 0, {"normal": np.zeros((14, 8))}), {"seq": 2, "kind": "metric", "time": 0,
          "payload": {"epoch": 0, "train_loss": 1.0, "val_loss": 1.2, "val_iou": 0.3}}]
    out = figures("""const s = rs.createRunState(); rs.applyEvents(s, arg); rs.applyEvents(s, arg);
        return {frames: s.alpha.frames.length, metrics: s.metrics.length, lastSeq: s.lastSeq,
                loss: fig.lossCurves(s.metrics)};""", ev)
    assert (out["frames"], out["metrics"], out["lastSeq"]) == (1, 1, 2)
    names = {t["name"]: t for t in out["loss"]["data"]}
    assert names["validation IoU"]["yaxis"] == "y2" and names["validation IoU"]["y"] == [0.3]
    assert names["train loss"]["y"] == [1.0]
    # The retrain stage's epochs count from 0 again: its own dashed line, not a jump in the search's.
    retrain = figures("""return fig.lossCurves([{epoch: 0, stage: 'search', train_loss: 1, val_iou: 0.3},
        {epoch: 1, stage: 'search', train_loss: 0.8, val_iou: 0.4}, {epoch: 0, stage: 'retrain', train_loss: 0.9}]).data
        .map(t => [t.name, t.x, t.line.dash]);""")
    assert retrain == [["train loss", [0, 1], "solid"], ["validation IoU", [0, 1], "solid"], ["retrain: train loss", [0], "dash"]]


GENOTYPE = {"cells": {
    "normal": {"nodes": [[["sep_conv_3x3", 0], ["skip_connect", 1]], [["dil_conv_3x3", 0], ["sep_conv_5x5", 2]]], "concat": [2, 3]},
    "down": {"nodes": [[["max_pool_3x3", 0], ["sep_conv_3x3", 1]], [["avg_pool_3x3", 1], ["skip_connect", 2]]], "concat": [2, 3]},
}}


def test_cell_graph_labels_every_chosen_edge_with_its_op(figures, artifacts_dir):
    other = json.loads(json.dumps(GENOTYPE))
    other["cells"]["normal"]["nodes"][1][1] = ["none", 2]  # one op differs
    out = figures("""const cells = fig.normalizeGenotype(arg.g);
        const diff = fig.genotypeDiff(arg.g, arg.other);
        const spec = fig.cellGraph('normal', cells.normal, {diff: diff.normal, epoch: 4});
        Plotly.newPlot('plot', spec.data, spec.layout);
        return {cells, spec, diff: Object.fromEntries(Object.entries(diff).map(([k, m]) => [k, [...m.entries()]])),
                event: fig.normalizeGenotype({epoch: 4, genotype: arg.g})};""", {"g": GENOTYPE, "other": other})
    assert out["cells"]["normal"]["edges"] == [
        {"from": 0, "to": 2, "op": "sep_conv_3x3"}, {"from": 1, "to": 2, "op": "skip_connect"},
        {"from": 0, "to": 3, "op": "dil_conv_3x3"}, {"from": 2, "to": 3, "op": "sep_conv_5x5"}]
    assert out["event"] == out["cells"]  # a genotype event's payload reads the same
    assert out["diff"] == {"normal": [["2-3", "none"]], "down": []}
    spec = out["spec"]
    labels = next(t for t in spec["data"] if t["name"] == "ops")["text"]
    assert labels[:3] == ["sep_conv_3x3", "skip_connect", "dil_conv_3x3"]
    assert "sep_conv_5x5" in labels[3] and "none" in labels[3]  # the changed edge names both ops
    assert [a["text"] for a in spec["layout"]["annotations"] if not a["showarrow"]] == labels
    arrows = [a for a in spec["layout"]["annotations"] if a["showarrow"]]
    assert len(arrows) == 4 + 2  # four edges, two into the output concat
    assert sum(a["arrowcolor"] == "#d50000" for a in arrows) == 1
    nodes = next(t for t in spec["data"] if t["name"] == "nodes")
    assert len(nodes["x"]) == 5  # c_{k-2}, c_{k-1}, 2, 3, out
    assert "epoch 4" in spec["layout"]["title"]["text"]
    figures.page.wait_for_selector("#plot .annotation")
    shot(figures.page, artifacts_dir, "figure-cell-graph")


def test_darts_style_genotype_is_read_too(figures):
    darts = {"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["skip_connect", 0], ["sep_conv_3x3", 2]], "normal_concat": [2, 3]}
    cells = figures("return fig.normalizeGenotype(arg);", darts)
    assert [(e["from"], e["to"]) for e in cells["normal"]["edges"]] == [(0, 2), (1, 2), (0, 3), (2, 3)]
    assert cells["normal"]["concat"] == [2, 3]


def test_pr_curves_one_per_threshold_with_ap(figures):
    ev = {"test_iou": 0.61, "pr": {"0.75": {"precision": [1, 0.5], "recall": [0.2, 0.4], "ap": 0.3},
                                   "0.5": {"precision": [1, 0.8, 0.6], "recall": [0.3, 0.6, 0.9], "ap": 0.71}}}
    spec = figures("return fig.prCurves(arg);", ev)
    assert [t["name"] for t in spec["data"]] == ["IoU ≥ 0.5 (AP 0.710)", "IoU ≥ 0.75 (AP 0.300)"]
    assert spec["data"][0]["x"] == [0.3, 0.6, 0.9] and spec["data"][0]["y"] == [1, 0.8, 0.6]
    # The retrain stage's shape (nas_core/train/retrain.py): curves per foreground class, then per threshold.
    engine = {"stage": "retrain", "split": "val", "pixel": {"miou": 0.55}, "ap": {"0.5": 0.71},
              "curves": {"1": {"0.5": {"ap": 0.71, "precision": [1, 0.6], "recall": [0.5, 0.9], "score": [0.9, 0.2]},
                               "0.25": {"ap": 0.8, "precision": [1, 0.7], "recall": [0.6, 0.95], "score": [0.9, 0.2]}}}}
    out = figures("""const s = rs.createRunState();
        rs.applyEvents(s, [{seq: 1, kind: 'metric', payload: {epoch: 0, train_loss: 1, val_iou: 0.3}},
                           {seq: 2, kind: 'evaluation', payload: arg},
                           {seq: 3, kind: 'evaluation', payload: {stage: 'evaluate', split: 'test', miou: 0.5}}]);
        return {names: fig.prCurves(rs.prEvaluation(s)).data.map(t => t.name)};""", engine)
    assert out["names"] == ["IoU ≥ 0.25 (AP 0.800)", "IoU ≥ 0.5 (AP 0.710)"]


def test_searched_against_random_and_best_so_far(figures, artifacts_dir):
    rng = np.random.default_rng(2)
    cands = [{"iou": float(v), "train_time_s": float(t), "status": "ok"} for v, t in zip(rng.uniform(0.2, 0.6, 20), rng.uniform(1, 3, 20))]
    cands.append({"iou": None, "train_time_s": 1.0, "status": "error"})
    out = figures("""const strip = fig.searchedVsRandom([{label: 'run 1 (darts)', iou: 0.7}], arg);
        const best = fig.bestSoFar([{name: 'random', candidates: arg}]);
        Plotly.newPlot('plot', strip.data, strip.layout); return {strip, best};""", cands)
    box, star = out["strip"]["data"]
    assert box["type"] == "box" and box["boxpoints"] == "all" and len(box["y"]) == 20
    assert star["y"] == [0.7] and star["x"] == ["searched"]
    line = out["best"]["data"][0]
    # A failed candidate spent compute but found nothing: the line moves right, not up.
    ious = [c["iou"] for c in cands[:20]]
    best = list(np.maximum.accumulate(ious))
    assert line["y"] == pytest.approx(best + best[-1:])
    assert line["x"] == pytest.approx(list(np.cumsum([c["train_time_s"] for c in cands])))
    figures.page.wait_for_selector("#plot .boxlayer")
    shot(figures.page, artifacts_dir, "figure-searched-vs-random")


def test_worker_timeline_shows_which_rank_trained_what_with_busy_and_idle_time(figures, artifacts_dir):
    # Two trial ranks, as a 3-process discrete search logs them: rank 1 trains trials 0 and 2 back to back, rank 2
    # trains trial 1, then its trial 3 fails; rank 2 waits 1 s between them (dispatch), rank 1 drains at the end.
    t0 = 1_790_000_000.0
    cands = [{"trial": 0, "attempt": 0, "worker": 1, "started": t0, "finished": t0 + 4, "iou": 0.4, "status": "ok"},
             {"trial": 1, "attempt": 0, "worker": 2, "started": t0 + 0.5, "finished": t0 + 3, "iou": 0.5, "status": "ok"},
             {"trial": 2, "attempt": 0, "worker": 1, "started": t0 + 4, "finished": t0 + 7, "iou": 0.3, "status": "ok"},
             {"trial": 3, "attempt": 1, "worker": 2, "started": t0 + 4, "finished": t0 + 10, "iou": None, "status": "error"},
             {"trial": 4, "attempt": 0, "worker": 1, "iou": 0.2, "status": "ok"}]  # an old log without times: left out
    out = figures("""const t = fig.workerTimeline(arg); Plotly.newPlot('plot', t.data, t.layout); return t;""", cands)
    ok, bad = out["data"]
    assert ok["y"] == ["rank 1", "rank 2", "rank 1"] and ok["text"] == ["trial 0", "trial 1", "trial 2"]
    assert ok["base"] == pytest.approx([0, 0.5, 4]) and ok["x"] == pytest.approx([4, 2.5, 3])
    assert bad["y"] == ["rank 2"] and bad["base"] == pytest.approx([4]) and bad["x"] == pytest.approx([6])
    assert out["span_s"] == pytest.approx(10)
    by = {w["worker"]: w for w in out["workers"]}
    assert (by[1]["trials"], by[1]["busy_s"], by[1]["idle_s"]) == (2, pytest.approx(7), pytest.approx(3))
    assert (by[2]["trials"], by[2]["busy_s"], by[2]["idle_s"]) == (2, pytest.approx(8.5), pytest.approx(1.5))
    assert out["layout"]["title"]["text"] == "trials per worker · busy 78%"  # 15.5 of 2 x 10 worker-seconds
    assert out["layout"]["yaxis"]["categoryarray"] == ["rank 2", "rank 1"], "rank 1 on top"
    assert out["layout"]["yaxis"]["ticktext"] == ["rank 1: 7 s busy, 3 s idle", "rank 2: 9 s busy, 2 s idle"]
    # Best so far counts the same worker-seconds the timeline draws (and a compute budget spends).
    best = figures("return fig.bestSoFar([{name: 'r', candidates: arg}]).data[0];", cands[:4])
    assert best["x"] == pytest.approx([4, 6.5, 9.5, 15.5]) and best["y"] == pytest.approx([0.4, 0.5, 0.5, 0.5])
    figures.page.wait_for_selector("#plot .barlayer")
    shot(figures.page, artifacts_dir, "figure-worker-timeline")


def test_throttle_runs_at_most_five_times_a_second_and_always_the_last(figures):
    out = figures.page.evaluate("""async () => {
        let calls = 0, seen = null, value = 0;
        const t = window.live.throttle(() => { calls += 1; seen = value; });
        for (let i = 0; i < 100; i++) { value = i; t(); }          // a burst: one redraw, with the newest value
        await new Promise((r) => setTimeout(r, 300));
        const burst = {calls, seen};
        calls = 0;
        const t0 = performance.now();
        while (performance.now() - t0 < 1000) { value += 1; t(); await new Promise((r) => setTimeout(r, 20)); }
        await new Promise((r) => setTimeout(r, 300));
        return {burst, spread: calls, final: seen === value, max: window.live.MAX_REDRAWS_PER_S};
    }""")
    assert out["burst"] == {"calls": 1, "seen": 99}
    assert 2 <= out["spread"] <= out["max"] + 1  # ~50 calls over a second, at most one per 200 ms (+ the trailing one)
    assert out["final"]
