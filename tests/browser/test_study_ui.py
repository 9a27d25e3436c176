"""The UI tells the truth: the run page's progress line names the stage running and counts epochs from 1, the Log
tab shows the search's own log lines (a placeholder before the first), and the experiment page shows a study over
seeds (every seed's test IoU, searched beside random, means with 95% bootstrap intervals, the verdict), with a
near-zero foreground IoU said as "predicts only background". Events come through the real ingest endpoint, shaped
as nas_core/search writes them (0-based epochs; a status event opens each stage)."""
from __future__ import annotations

import pytest

from tests.browser.conftest import shot, sign_in
from tests.browser.test_pages import Feed

pytestmark = pytest.mark.browser


def _progress_text(page, expected: str) -> str:
    page.wait_for_function("(t) => document.getElementById('run-progress-text').textContent.startsWith(t)", arg=expected)
    return page.locator("#run-progress-text").inner_text()


def test_progress_line_follows_the_stages_and_the_log_tab_its_lines(page, ui_api, ui_stack, artifacts_dir):
    exp = ui_api.experiment("stages", search={"epochs": 10}, retrain={"epochs": 5})
    run_id = ui_api.launch(exp["id"])["run"]["id"]
    feed = Feed(ui_api, run_id)
    sign_in(page, ui_stack["url"], ui_api.token, f"#/runs/{run_id}")
    page.wait_for_selector("#run-status .badge")

    feed.send("status", {"state": "running", "stage": "search"})
    # Epoch index 2 of 10 done: the third epoch, 30%.
    feed.send("progress", {"stage": "search", "epoch": 2, "epochs": 10, "fraction": 0.3, "eta_s": 70.0})
    assert _progress_text(page, "search · epoch 3/10 · 30%").endswith("ETA 1 min 10 s")
    assert page.evaluate("document.getElementById('run-progress').value") == pytest.approx(0.3)
    feed.send("progress", {"stage": "search", "epoch": 9, "epochs": 10, "fraction": 1.0, "eta_s": 0.0})
    _progress_text(page, "search · epoch 10/10 · 100%")

    # The retrain: its own epochs, from 1; the search's 100% is gone.
    feed.send("status", {"state": "running", "stage": "decode"})
    feed.send("status", {"state": "running", "stage": "retrain"})
    assert _progress_text(page, "retrain · epoch 1/5") == "retrain · epoch 1/5"
    feed.send("metric", {"stage": "retrain", "label": "searched", "epoch": 0, "train_loss": 0.7, "lr": 0.02})
    assert _progress_text(page, "retrain · epoch 2/5") == "retrain · epoch 2/5"
    assert page.evaluate("document.getElementById('run-progress').value") == pytest.approx(0.2)
    feed.send("status", {"state": "running", "stage": "evaluate"})
    assert _progress_text(page, "evaluate") == "evaluate"
    # No measure of its own: an indeterminate bar, not the search's full one.
    assert page.evaluate("document.getElementById('run-progress').hasAttribute('value')") is False
    # The search's own last word ends the line, before the worker moves the run's status.
    feed.send("status", {"state": "succeeded", "stage": None})
    assert _progress_text(page, "finished") == "finished"
    assert page.evaluate("document.getElementById('run-progress').value") == pytest.approx(1.0)

    # The Log tab: a placeholder, then the search's log events as they arrive.
    page.locator("button[data-tab=log]").click()
    assert page.locator("#run-log-empty").is_visible()
    assert "no log lines yet" in page.locator("#run-log-empty").inner_text()
    feed.send("log", {"stage": "search", "message": "resumed at epoch 4 (step 40)"})
    feed.send("log", {"stage": "search", "level": "warning", "message": "collapse alarm: 5 parameter-free ops in normal"})
    page.wait_for_function("() => document.getElementById('run-log').textContent.includes('collapse alarm')")
    lines = page.locator("#run-log").inner_text().splitlines()
    assert lines[0].endswith("search: resumed at epoch 4 (step 40)")
    assert "WARNING search: collapse alarm: 5 parameter-free ops in normal" in lines[1]
    assert page.locator("#run-log-empty").is_hidden()
    shot(page, artifacts_dir, "run-log")
    assert page.console_errors == []


def _evaluate(ui_api, run_id: int, foreground: float) -> None:
    Feed(ui_api, run_id).send("evaluation", {"stage": "evaluate", "split": "test", "miou": 0.5 + foreground / 2,
                                             "iou": [0.97, foreground]})


def test_study_view_shows_seeds_intervals_and_the_verdict(page, ui_api, ui_stack, artifacts_dir):
    exp = ui_api.experiment("study", repeats=3, baseline={"random": True})
    # Two launches of the same study: DARTS clearly above its baselines, GAEA inside their spread.
    darts, gaea = ui_api.launch(exp["id"]), ui_api.launch(exp["id"], method="gaea")
    for launch, searched, random in ((darts, [0.62, 0.66, 0.64], [0.41, 0.45, 0.02]),
                                     (gaea, [0.50, 0.62, 0.41], [0.47, 0.60, 0.52])):
        assert len(launch["repeats"]) == 3 and len(launch["baselines"]) == 3
        for run, iou in zip(launch["repeats"], searched):
            _evaluate(ui_api, run["id"], iou)
        for run, iou in zip(launch["baselines"], random):
            _evaluate(ui_api, run["id"], iou)
    study = ui_api("GET", f"/api/experiments/{exp['id']}/study")

    sign_in(page, ui_stack["url"], ui_api.token, f"#/experiments/{exp['id']}")
    page.wait_for_selector(".study-group[data-method=gaea] .verdict")
    d = page.locator(".study-group[data-method=darts]")
    assert d.locator(".verdict").inner_text().startswith("Verdict: the search beats random by 0.347 IoU")
    g = page.locator(".study-group[data-method=gaea]")
    assert "no evidence that the search beats random at this budget" in g.locator(".verdict").inner_text()
    # The page shows the server's numbers: means and intervals of both arms and of the difference.
    darts_study = next(x for x in study["groups"] if x["method"] == "darts")
    assert d.locator("tr[data-arm=searched] .mean").inner_text() == f"{darts_study['searched']['mean']:.3f}"
    assert d.locator("tr[data-arm=random] .interval").inner_text() == (
        f"{darts_study['random']['low']:.3f} to {darts_study['random']['high']:.3f}")
    assert d.locator("tr[data-arm=difference] .interval").inner_text().startswith("+")
    # Each seed's searched run beside its baseline; the near-zero one says it predicts only background.
    assert d.locator("table.study-seeds tbody tr").count() == 3
    seed2 = d.locator("table.study-seeds tr[data-seed='2']").inner_text()
    assert "0.640" in seed2 and "0.020" in seed2 and "predicts only background" in seed2
    # The figure: per-seed points and each arm's mean with its interval as an error bar.
    page.wait_for_function("() => { const f = document.getElementById('study-darts'); return f && f.data && f.data.length === 4; }")
    bars = page.evaluate("document.getElementById('study-darts').data.filter((t) => t.error_y).map((t) => t.error_y.array[0])")
    assert len(bars) == 2 and all(b > 0 for b in bars)
    # The runs table says it too, from the same server flag.
    baseline_row = page.locator(f"table.list tr[data-run='{darts['baselines'][2]['id']}'] .headline")
    assert "predicts only background" in baseline_row.inner_text()
    shot(page, artifacts_dir, "experiment-study")
    # Launching the study again from its page stays there: three more seeds' runs, queued beside the finished ones.
    page.get_by_role("button", name="Launch run").click()
    page.wait_for_selector("#launch-message:has-text('3 searches launched')")
    page.wait_for_function("() => document.querySelectorAll('.study-group[data-method=darts] table.study-seeds .chip').length === 12")
    assert d.locator(".verdict").inner_text().startswith("Verdict: the search beats random by 0.347 IoU")
    assert page.console_errors == []
