"""One headline IoU per run (backend/headline.py): the run page, the experiment's run table and the compare page
show the server's value with its label, so no page can pick a different IoU for the same run."""
from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_pages import GENOTYPE, Feed, queued_run

pytestmark = pytest.mark.browser


def _curves(ap):
    return {"1": {"0.5": {"ap": ap, "precision": [1.0, ap], "recall": [0.0, 1.0], "score": [0.9, 0.1]}}}


def _headline_on_run_page(page, run_id: int) -> tuple[str, str]:
    page.evaluate("(r) => { location.hash = r; }", f"#/runs/{run_id}")
    page.wait_for_function("(id) => document.querySelector('h1') && document.querySelector('h1').textContent"
                           ".startsWith(`Run ${id}`) && document.getElementById('run-headline').textContent", arg=run_id)
    h = page.locator("#run-headline")
    return h.inner_text(), h.get_attribute("data-value")


def test_run_page_and_compare_page_show_the_same_headline(page, ui_api, ui_stack):
    # The evaluated search has a hand-designed baseline (baseline.networks): the compare page draws its test
    # precision-recall curve beside the search's and names it by its network.
    launched = ui_api.launch(ui_api.experiment("headline-a", baseline={"networks": [
        {"name": "plain-unet", "channels": 4, "depth": 1}]})["id"])
    evaluated, hand = launched["run"]["id"], launched["baselines"][0]["id"]
    searching = queued_run(ui_api, "headline-b")
    Feed(ui_api, hand).send("evaluation", {"stage": "evaluate", "label": "plain-unet c4 d1", "split": "test",
                                           "miou": 0.6, "iou": [0.9, 0.3], "curves": _curves(0.4)})
    feed = Feed(ui_api, evaluated)
    feed.send("metric", {"stage": "search", "epoch": 0, "train_loss": 0.5, "val_loss": 0.6, "val_iou": 0.45})
    feed.send("genotype", {"stage": "search", "epoch": 0, "genotype": GENOTYPE})
    # A mean IoU and a validation IoU that a second rule could pick instead: the headline is the foreground class.
    feed.send("evaluation", {"stage": "retrain", "split": "val", "pixel": {"miou": 0.9}})
    feed.send("evaluation", {"stage": "evaluate", "split": "test", "miou": 0.8, "iou": [0.97, 0.63],
                             "curves": _curves(0.7)})
    Feed(ui_api, searching).send("metric", {"stage": "search", "epoch": 0, "train_loss": 0.5, "val_loss": 0.6,
                                            "val_iou": 0.52})

    sign_in(page, ui_stack["url"], ui_api.token, f"#/runs/{evaluated}")
    on_run = {r: _headline_on_run_page(page, r) for r in (evaluated, searching)}
    assert on_run[evaluated] == ("test IoU, foreground class (evaluate stage): 0.630", "0.63")
    assert on_run[searching] == ("validation mIoU during search: 0.520", "0.52")

    page.evaluate("(r) => { location.hash = r; }", f"#/compare?runs={evaluated},{searching}")
    page.wait_for_selector(f".run-head .headline[data-run='{searching}']")
    for run_id in (evaluated, searching):
        h = page.locator(f".run-head .headline[data-run='{run_id}']")
        assert (h.inner_text(), h.get_attribute("data-value")) == on_run[run_id]

    page.wait_for_selector("[data-fig='pr-curves'] .scatterlayer")
    names = page.evaluate("document.querySelector(\"[data-fig='pr-curves']\").data.map(t => t.name)")
    assert names == [f"run {evaluated} (darts): IoU ≥ 0.5 (AP 0.700)", f"run {hand} (plain-unet c4 d1): IoU ≥ 0.5 (AP 0.400)"]
    assert "plain-unet c4 d1 0.300" in page.locator(f".run-head:has(.headline[data-run='{evaluated}'])").inner_text()

    # The experiment's study sets the hand-designed arm beside the searched one, per seed and in its figure.
    experiment = ui_api("GET", f"/api/runs/{evaluated}")["experiment_id"]
    page.evaluate("(r) => { location.hash = r; }", f"#/experiments/{experiment}")
    arm = page.locator(".study-group[data-method=darts] tr[data-arm='network:plain-unet c4 d1']")
    arm.locator(".mean").wait_for()
    assert arm.locator(".mean").inner_text() == "0.300"
    assert "0.300" in page.locator(".study-group[data-method=darts] table.study-seeds tr[data-seed='0']").inner_text()
    page.wait_for_function("() => { const f = document.getElementById('study-darts'); return f && f.data && "
                           "f.data.some((t) => t.name === 'plain-unet c4 d1, per seed'); }")

    # The API gives the pages one object: the run endpoint's headline is the comparison's.
    cmp = ui_api("GET", "/api/compare", params={"runs": [evaluated, searching]})
    for r in cmp["runs"]:
        assert r["headline"] == ui_api("GET", f"/api/runs/{r['run']['id']}")["headline"]
        assert r["iou"] == pytest.approx(r["headline"]["value"])
    assert page.console_errors == []
