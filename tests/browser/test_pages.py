"""The pages in Chromium against the real API: experiments list, the schema form and its field errors, a run's
live heatmaps, cell graph and evaluation, and the comparison of two runs.

These use `ui_stack` (the API without a worker): the runs stay queued and their events are appended through the
API's ingest endpoint, exactly as the worker's watcher appends a search's events. That drives the live updates
deterministically; test_full_flow.py launches a real search through the worker.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from backend.compare import ALPHA_DECIMALS
from nas_core.config import DEMO_EXPERIMENT
from tests.browser.conftest import shot, sign_in
from tests.browser.test_figures import EDGES, GENOTYPE, OPS, softmax

pytestmark = pytest.mark.browser
CELLS = ("normal", "down", "up")


class Feed:
    """Events of one run, numbered like a run's log, appended through the ingest endpoint."""

    def __init__(self, api, run_id: int):
        self.api, self.run_id, self.seq = api, run_id, 0

    def send(self, kind: str, payload: dict) -> int:
        self.seq += 1
        self.api.ingest(self.run_id, [{"seq": self.seq, "time": time.time(), "kind": kind, "payload": payload}])
        return self.seq

    def epoch(self, epoch: int, logits: dict[str, np.ndarray], genotype: dict, val_iou: float, epochs: int = 10) -> None:
        cells = {ct: {"alpha": softmax(a).tolist(), "beta": None, "edges": EDGES, "ops": OPS,
                      "entropy": (-(softmax(a) * np.log(softmax(a))).sum(1)).tolist()} for ct, a in logits.items()}
        self.send("alpha", {"epoch": epoch, "step": 10 * (epoch + 1), "cells": cells})
        self.send("metric", {"stage": "search", "epoch": epoch, "train_loss": 1.0 / (epoch + 1), "val_loss": 1.2 / (epoch + 1),
                             "val_iou": val_iou})
        self.send("genotype", {"stage": "search", "epoch": epoch, "genotype": genotype})
        # `epoch` is the one just done, 0-based, as nas_core/search/loop.py writes it (the page shows it from 1).
        self.send("progress", {"stage": "search", "epoch": epoch, "epochs": epochs, "fraction": (epoch + 1) / epochs,
                               "eta_s": 12.0 * (epochs - epoch - 1)})


def queued_run(api, name: str) -> int:
    exp = api.experiment(name)
    return api.launch(exp["id"])["run"]["id"]


def plot_z(pg, cell_type: str):
    """The z of one cell type's heatmap: the run page draws them all in one figure (js/alpha_view.js)."""
    return pg.evaluate("""(ct) => { const d = document.getElementById('heatmaps-all');
        const t = d && d.data && d.data.find(t => t.name === ct); return t ? t.z : null; }""", cell_type)


def wait_z(pg, cell_type: str, expected: np.ndarray, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    z = None
    while time.monotonic() < deadline:
        z = plot_z(pg, cell_type)
        if z is not None and np.allclose(np.array(z), expected, atol=1e-9):
            return
        time.sleep(0.1)
    raise AssertionError(f"the {cell_type} heatmap never showed the expected alpha; last z: {None if z is None else np.array(z)[:2]}")


def test_experiments_list_filters_and_pages(page, ui_api, ui_stack, artifacts_dir):
    ids = [ui_api.experiment(f"listing-{i:02d}")["id"] for i in range(30)]
    for _ in range(60):  # more runs than a page holds: the experiment's run table pages through them
        ui_api.launch(ids[7])
    sign_in(page, ui_stack["url"], ui_api.token, "#/experiments?q=listing-")
    page.wait_for_selector("table.list tbody tr")
    assert page.locator("table.list tbody tr").count() == 25
    assert "1–25 of 30" in page.locator(".pager").inner_text()
    shot(page, artifacts_dir, "experiments")
    page.get_by_role("button", name="next ›").click()
    page.wait_for_function("() => document.querySelectorAll('table.list tbody tr').length === 5")
    assert "26–30 of 30" in page.locator(".pager").inner_text()
    page.fill("input[name=q]", "listing-07")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_function("() => document.querySelectorAll('table.list tbody tr').length === 1")
    row = page.locator("table.list tbody tr")
    assert row.locator(".badge[data-status='queued']").count() == 1 and "60" in row.locator("td.badges").inner_text()
    page.get_by_role("link", name="listing-07").click()
    page.wait_for_selector("dl.facts")
    assert "darts" in page.locator("dl.facts").inner_text()
    page.wait_for_selector("tr[data-run]")
    # "Edit as new" opens the form on this experiment's config.
    page.get_by_role("link", name="Edit as new").click()
    page.wait_for_selector("#experiment-form input[name='name']")
    assert page.input_value("input[name='name']") == "listing-07 (copy)"
    assert page.input_value("input[name='data.tile_size']") == "32"
    page.go_back()
    page.wait_for_selector("tr[data-run]")
    assert page.locator("tr[data-run]").count() == 50
    assert "1–50 of 60" in page.locator(".pager").inner_text()
    shot(page, artifacts_dir, "experiment-runs")
    # Two picked runs open the comparison.
    picks = page.locator("input.pick")
    picks.nth(0).check()
    picks.nth(1).check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url("**/#/compare?runs=*")
    assert page.console_errors == []


def test_invalid_form_shows_the_field_error(page, ui_api, ui_stack, artifacts_dir):
    before = ui_api("GET", "/api/experiments", params={"limit": 1})["total"]
    sign_in(page, ui_stack["url"], ui_api.token, "#/new")
    page.wait_for_selector("#experiment-form [data-path='space.depth'] input")
    # The form is the schema, starting from the demo experiment; one fieldset per cell type of the macro.
    assert page.input_value("input[name='search.epochs']") == str(DEMO_EXPERIMENT["search"]["epochs"])
    # Optional choices offer "(default)", which the engine resolves per method.
    assert page.input_value("select[name='search.supernet']") == ""
    assert page.eval_on_selector("select[name='search.edge_norm']", "s => [...s.options].map(o => o.text)") == ["(default)", "on", "off"]
    assert page.locator("fieldset[data-path^='space.cells.']").count() == 3
    page.select_option("select[name='space.macro']", "darts-classifier")
    assert sorted(page.eval_on_selector_all("fieldset[data-path^='space.cells.']", "els => els.map(e => e.dataset.path)")) == \
        ["space.cells.normal", "space.cells.reduce"]
    page.select_option("select[name='space.macro']", "unet")
    # SLURM resources appear with the SLURM launcher; a malformed value is refused by the schema's pattern.
    assert not page.is_visible("fieldset[data-path='launcher.slurm']")
    page.select_option("select[name='launcher.kind']", "slurm")
    assert page.is_visible("fieldset[data-path='launcher.slurm']")
    page.fill("input[name='launcher.slurm.mem']", "16 gigs")
    page.fill("input[name='space.depth']", "9")
    # Hand-designed baselines are a list of objects: one fieldset per network, added and removed in the form.
    for _ in range(3):
        page.click("button[data-add='baseline.networks']")
    page.get_by_role("button", name="remove network 3").click()
    assert page.locator("fieldset[data-path^='baseline.networks.']").count() == 2
    assert page.input_value("select[name='baseline.networks.0.name']") == "resnext-unet"
    page.select_option("select[name='baseline.networks.1.name']", "plain-unet")
    page.fill("textarea[name='baseline.networks.1.backbone']", '{"cardinality": 2}')
    page.get_by_role("button", name="Create and launch").click()
    err = page.locator("[data-path='space.depth'] > .field-error")
    err.wait_for()
    page.wait_for_function("() => document.querySelector(\"[data-path='space.depth'] > .field-error\").textContent !== ''")
    assert "6" in err.inner_text()  # pydantic: "Input should be less than or equal to 6"
    assert page.locator("[data-path='name'] > .field-error").inner_text() != ""  # the name was left empty
    assert "pattern" in page.locator("[data-path='launcher.slurm.mem'] > .field-error").inner_text()
    assert page.locator("[data-path='space.depth']").get_attribute("class").count("invalid") == 1
    # plain-unet takes no cardinality: the error sits on that network's backbone field, not on the first network.
    assert "no argument 'cardinality'" in page.locator("[data-path='baseline.networks.1.backbone'] > .field-error").inner_text()
    assert page.locator("[data-path='baseline.networks.0.backbone'] > .field-error").inner_text() == ""
    shot(page, artifacts_dir, "new-experiment-invalid")
    assert ui_api("GET", "/api/experiments", params={"limit": 1})["total"] == before
    # Fixing the field clears its error.
    page.fill("input[name='space.depth']", "2")
    assert page.locator("[data-path='space.depth'] > .field-error").inner_text() == ""


def test_run_page_follows_events_live(page, ui_api, ui_stack, artifacts_dir):
    run_id = queued_run(ui_api, "live-heatmap")
    feed = Feed(ui_api, run_id)
    rng = np.random.default_rng(3)
    sign_in(page, ui_stack["url"], ui_api.token, f"#/runs/{run_id}")
    page.wait_for_selector("#run-status .badge")
    assert page.locator("#run-status .badge").inner_text() == "queued"

    e0 = {ct: rng.normal(size=(14, 8)) for ct in CELLS}
    feed.send("status", {"state": "running"})
    feed.epoch(0, e0, GENOTYPE, 0.2)
    wait_z(page, "normal", softmax(e0["normal"]))
    wait_z(page, "up", softmax(e0["up"]))
    page.wait_for_function("() => document.getElementById('frame-label').textContent.startsWith('epoch 0')")

    # The heatmap moves as the next epoch arrives, without a reload.
    e1 = {ct: a + rng.normal(size=(14, 8)) for ct, a in e0.items()}
    feed.epoch(1, e1, GENOTYPE, 0.3)
    wait_z(page, "normal", softmax(e1["normal"]))
    page.wait_for_function("() => document.getElementById('frame-label').textContent.startsWith('epoch 1')")
    # The progress event is sent after the alpha one (Feed.epoch): wait for it rather than race it.
    page.wait_for_function("() => Math.abs(document.getElementById('run-progress').value - 0.2) < 1e-6")
    assert "ETA" in page.locator("#run-progress-text").inner_text()
    shot(page, artifacts_dir, "run-alpha")

    # The slider goes back through the history.
    page.locator("#epoch-slider").fill("0")
    wait_z(page, "normal", softmax(e0["normal"]))
    assert not page.is_checked("#follow-live")
    # Play runs through the history to the newest frame and stops there.
    page.locator("#play").click()
    page.wait_for_function("() => document.getElementById('play').textContent.includes('play')"
                           " && document.getElementById('frame-label').textContent.startsWith('epoch 1')", timeout=20000)
    wait_z(page, "normal", softmax(e1["normal"]))

    # skip_connect taking over the normal cell raises the collapse warning.
    e2 = dict(e1)
    e2["normal"] = np.zeros((14, 8)); e2["normal"][:, OPS.index("skip_connect")] = 4.0
    page.check("#follow-live")
    feed.epoch(2, e2, GENOTYPE, 0.25)
    warning = page.locator("#collapse-warnings .warning[data-cell='normal']")
    warning.wait_for(timeout=20000)
    assert "skip_connect win 14 of 14 edges" in warning.inner_text()
    assert page.locator("#collapse-warnings .warning").count() == 1  # random alpha elsewhere is not collapse

    # The decoded cell, redrawn when a new genotype arrives.
    page.get_by_role("button", name="Cell graph").click()
    page.wait_for_function("() => document.getElementById('cell-normal') && document.getElementById('cell-normal').data")
    labels = page.evaluate("document.getElementById('cell-normal').data.find(t => t.name === 'ops').text")
    assert labels == ["sep_conv_3x3", "skip_connect", "dil_conv_3x3", "sep_conv_5x5"]
    assert "sep_conv_5x5" in page.locator("#cell-normal").inner_text()  # drawn as SVG text, not only in the spec
    shot(page, artifacts_dir, "run-cell-graph")
    changed = {"cells": {**GENOTYPE["cells"], "normal": {"nodes": [[["dil_conv_5x5", 0], ["skip_connect", 1]],
                                                                   [["dil_conv_3x3", 0], ["sep_conv_5x5", 2]]], "concat": [2, 3]}}}
    feed.send("genotype", {"stage": "search", "epoch": 3, "genotype": changed})
    page.wait_for_function("() => document.getElementById('cell-normal').data.find(t => t.name === 'ops').text[0] === 'dil_conv_5x5'",
                           timeout=20000)

    page.get_by_role("button", name="Loss and IoU").click()
    page.wait_for_function("() => document.getElementById('loss') && document.getElementById('loss').data")
    iou = page.evaluate("document.getElementById('loss').data.find(t => t.name === 'validation IoU').y")
    assert iou == [0.2, 0.3, 0.25]

    # The two evaluations a search ends with (nas_core/train/retrain.py, nas_core/search/stages.py).
    feed.send("evaluation", {"stage": "retrain", "label": "searched", "split": "val", "pixel": {"miou": 0.42},
                             "curves": {"1": {"0.5": {"precision": [1.0, 0.7], "recall": [0.4, 0.8], "ap": 0.66},
                                              "0.75": {"precision": [0.9, 0.5], "recall": [0.2, 0.5], "ap": 0.35}}}})
    feed.send("evaluation", {"stage": "evaluate", "label": "searched", "split": "test", "miou": 0.4, "iou": [0.9, 0.42],
                             "ap": {"0.5": 0.6}})
    page.get_by_role("button", name="Evaluation").click()
    page.wait_for_function("() => document.getElementById('eval-pr') && document.getElementById('eval-pr').data", timeout=20000)
    names = page.evaluate("document.getElementById('eval-pr').data.map(t => t.name)")
    assert names == ["IoU ≥ 0.5 (AP 0.660)", "IoU ≥ 0.75 (AP 0.350)"]
    # The searched cell's point is the run's headline (the evaluate stage's foreground-class test IoU), fetched anew.
    page.wait_for_function("() => { const d = document.getElementById('eval-strip'); "
                           "return d && d.data && d.data[1] && d.data[1].y[0] === 0.42; }", timeout=20000)
    assert page.locator("#run-headline").inner_text() == "test IoU, foreground class (evaluate stage): 0.420"
    shot(page, artifacts_dir, "run-evaluation")
    assert page.console_errors == []


def test_compare_two_runs(page, ui_api, ui_stack, artifacts_dir):
    rng = np.random.default_rng(4)
    other = {"cells": {**GENOTYPE["cells"], "normal": {"nodes": [[["sep_conv_3x3", 0], ["skip_connect", 1]],
                                                                 [["dil_conv_3x3", 0], ["none", 2]]], "concat": [2, 3]}}}
    runs, logits = [], []
    for name, genotype, iou in (("cmp-a", GENOTYPE, 0.5), ("cmp-b", other, 0.4)):
        run_id = queued_run(ui_api, name)
        feed = Feed(ui_api, run_id)
        per_epoch = [{ct: rng.normal(size=(14, 8)) for ct in ("normal", "down")} for _ in range(3)]
        for e, lg in enumerate(per_epoch):
            feed.epoch(e, lg, genotype, iou - 0.1 + 0.05 * e)
        runs.append(run_id)
        logits.append(per_epoch)
    sign_in(page, ui_stack["url"], ui_api.token, f"#/compare?runs={runs[0]},{runs[1]}")
    page.wait_for_function("() => [...document.querySelectorAll(\"#compare-alpha .col [data-fig='alpha']\")].filter(d => d.data && d.data.some(t => t.name === 'down')).length === 2")
    cols = page.locator("#compare-alpha .col")
    assert cols.count() == 2
    z = page.evaluate("[...document.querySelectorAll(\"#compare-alpha .col [data-fig='alpha']\")].map(d => d.data.find(t => t.name === 'normal').z)")
    # /api/compare sends alpha to ALPHA_DECIMALS places (backend/compare.py).
    sent = lambda lg: np.round(softmax(lg), ALPHA_DECIMALS)  # noqa: E731  (the feed sends weights)
    np.testing.assert_allclose(np.array(z[0]), sent(logits[0][2]["normal"]), atol=1e-9)
    np.testing.assert_allclose(np.array(z[1]), sent(logits[1][2]["normal"]), atol=1e-9)
    # Both at the same, earlier epoch when the slider moves.
    page.locator("#compare-epoch").fill("1")
    page.wait_for_function("() => document.querySelector(\"#compare-alpha .col [data-fig='alpha']\").data.find(t => t.name === 'normal').z[0][0] !== null")
    z = page.evaluate("[...document.querySelectorAll(\"#compare-alpha .col [data-fig='alpha']\")].map(d => d.data.find(t => t.name === 'normal').z)")
    np.testing.assert_allclose(np.array(z[1]), sent(logits[1][1]["normal"]), atol=1e-9)
    # The cells differ on edge 2->3: marked in both columns.
    marked = page.evaluate("""[...document.querySelectorAll("#compare-cells .col [data-fig='cell-normal']")]
        .map(d => d.layout.annotations.filter(a => a.showarrow && a.arrowcolor === '#d50000').length)""")
    assert marked == [1, 1]
    unmarked = page.evaluate("""[...document.querySelectorAll("#compare-cells .col [data-fig='cell-down']")]
        .map(d => d.layout.annotations.filter(a => a.showarrow && a.arrowcolor === '#d50000').length)""")
    assert unmarked == [0, 0]
    bars = page.evaluate("document.querySelector(\"[data-fig='metrics']\").data.map(t => [t.x[0], t.y[0]])")
    assert [b[0] for b in bars] == ["search.val_iou"] * 2
    assert [b[1] for b in bars] == pytest.approx([0.5, 0.4])  # the final validation IoU of each run
    curves = page.evaluate("document.querySelector(\"[data-fig='val-iou']\").data.map(t => t.y)")
    assert curves == [pytest.approx([0.4, 0.45, 0.5]), pytest.approx([0.3, 0.35, 0.4])]
    shot(page, artifacts_dir, "compare")
    assert page.console_errors == []


def test_searched_cell_against_its_random_baselines(page, ui_api, ui_stack, artifacts_dir):
    exp = ui_api.experiment("with-baselines", baseline={"random": True, "seeds": 2})
    launched = ui_api.launch(exp["id"])
    run_id, baselines = launched["run"]["id"], [b["id"] for b in launched["baselines"]]
    assert len(baselines) == 2
    rng = np.random.default_rng(5)
    ious = {}
    for b in baselines:
        feed = Feed(ui_api, b)
        ious[b] = [round(float(v), 4) for v in rng.uniform(0.2, 0.5, 6)]
        for trial, iou in enumerate(ious[b]):
            feed.send("candidate", {"trial": trial, "attempt": 0, "genotype": GENOTYPE, "iou": iou, "train_time_s": 2.0,
                                    "params_count": 1000, "status": "ok", "final": True, "method": "random"})
        feed.send("candidate", {"trial": 6, "attempt": 0, "genotype": GENOTYPE, "iou": None, "train_time_s": 1.0,
                                "status": "error", "error": "out of memory", "final": True, "method": "random"})
    # The searched cell's IoU is its headline (backend/headline.py): the evaluate stage's foreground-class test IoU.
    Feed(ui_api, run_id).send("evaluation", {"stage": "evaluate", "split": "test", "miou": 0.78, "iou": [0.95, 0.61]})

    sign_in(page, ui_stack["url"], ui_api.token, f"#/runs/{run_id}")
    page.get_by_role("button", name="Evaluation").click()
    # The baselines' candidates load after the run's own events: wait for them, not just for a first drawing.
    page.wait_for_function("() => { const d = document.getElementById('eval-strip'); "
                           "return d && d.data && d.data[0].y && d.data[0].y.length >= 12; }", timeout=20000)
    strip = page.evaluate("document.getElementById('eval-strip').data.map(t => ({name: t.name, y: t.y}))")
    assert sorted(strip[0]["y"]) == sorted(ious[baselines[0]] + ious[baselines[1]])  # the failed trials are left out
    assert strip[1]["y"] == [0.61] and "test IoU, foreground class (evaluate stage)" in strip[1]["name"]
    best = page.evaluate("document.getElementById('eval-best').data.map(t => ({name: t.name, y: t.y}))")
    assert [b["name"] for b in best] == [f"random, run {baselines[0]}", f"random, run {baselines[1]}", strip[1]["name"]]
    assert [b["y"][-1] for b in best[:2]] == [max(ious[baselines[0]]), max(ious[baselines[1]])]
    assert best[2]["y"] == [0.61, 0.61]  # the searched cell as the level to beat
    shot(page, artifacts_dir, "run-vs-random")

    # The comparison puts the same random candidates next to the searched cell.
    page.locator("a.chip", has_text="compare").click()
    page.wait_for_function("() => { const d = document.querySelector(\"[data-fig='vs-random']\"); return d && d.data; }",
                           timeout=20000)
    pooled = page.evaluate("document.querySelector(\"[data-fig='vs-random']\").data[0].y")
    assert sorted(pooled) == sorted(ious[baselines[0]] + ious[baselines[1]])

    # A baseline run opens on its candidates: no alpha to show.
    page.evaluate("(r) => { location.hash = r; }", f"#/runs/{baselines[0]}")
    page.wait_for_function("() => document.getElementById('eval-best') && document.getElementById('eval-best').data", timeout=20000)
    assert page.locator(".tabs button.active").inner_text() == "Evaluation"
    own = page.evaluate("document.getElementById('eval-strip').data[0].y")
    assert sorted(own) == sorted(ious[baselines[0]])
    assert page.console_errors == []


def test_pasting_a_token_signs_in(page, ui_api, ui_stack):
    page.goto(ui_stack["url"] + "/")
    page.wait_for_selector(".error")
    assert "token" in page.locator(".error").inner_text()  # the API's 401, said in words
    assert page.locator("#whoami").inner_text() == "not signed in"
    page.fill("#token-input", ui_api.token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("() => document.getElementById('whoami').textContent.includes('admin')")
    page.wait_for_selector("h1:has-text('Experiments')")
    assert page.locator(".error").count() == 0
    assert page.evaluate("localStorage.getItem('nasforge.token')") == ui_api.token
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_function("() => document.getElementById('whoami').textContent === 'not signed in'")
    assert page.evaluate("localStorage.getItem('nasforge.token')") is None
