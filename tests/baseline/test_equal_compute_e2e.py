"""End to end through the real local launcher and real `nasforge search` processes, driven by reconcile passes
as Celery beat makes them: a DARTS search, then its random baseline at the compute the search measured, and the
comparison the UI shows (the searched cell's test IoU against the baseline's, same retrain and evaluation); beside
them a hand-designed baseline (baseline.networks) that starts at once and is compared by its curves."""
from __future__ import annotations

import json
import time
from pathlib import Path

from backend import crud
from backend.compare import compare_runs
from backend.core.db import session_scope
from worker import control
from worker.reconcile import reconcile


def _get(run_id: int):
    with session_scope() as s:
        return crud.get_run(s, run_id)


def _log(run_dir: str) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "events.jsonl").read_text().splitlines()]


def _ended(run_id: int, deadline: float, what: str):
    """The run once it has ended, reconciling as beat would; fails past `deadline` naming `what`."""
    while _get(run_id).status not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"{what} is {_get(run_id).status}"
        reconcile()
        time.sleep(0.3)
    return _get(run_id)


def test_baseline_runs_after_its_search_at_the_searchs_compute(launch_search):
    net = {"name": "plain-unet", "channels": 4, "depth": 1}
    search_id, (base_id, net_id) = launch_search(baseline={"seeds": 1, "networks": [net]})
    assert control.launch(search_id) == "submitted"
    assert control.launch(base_id) == "queued"
    assert control.launch(net_id) == "submitted"  # no compute to match: it trains beside the search
    deadline = time.monotonic() + 150
    while _get(search_id).status not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"search is {_get(search_id).status}"
        reconcile()
        base = _get(base_id)
        # The same reconcile pass may have seen the search end and released the baseline: judge by the search's
        # state after the pass.
        if _get(search_id).status not in ("succeeded", "failed"):
            assert base.status == "queued" and base.pid is None, "the baseline never starts before its search ends"
        time.sleep(0.3)
    search = _get(search_id)
    assert search.status == "succeeded", search.status_reason

    # What the search's own log says its search stage took (one attempt, one process).
    log = _log(search.run_dir)
    began = next(e["time"] for e in log if e["kind"] == "status" and e["payload"].get("stage") == "search")
    ended = next(e["time"] for e in log if e["kind"] == "status" and e["payload"].get("stage") == "decode")
    base = _ended(base_id, deadline, "baseline")
    assert base.status == "succeeded", base.status_reason
    budget = base.config["search"]["compute_budget_s"]
    assert abs(budget - (ended - began)) < 1e-2

    events = _log(base.run_dir)
    done = next(e["payload"] for e in events if e["kind"] == "status" and e["payload"]["state"] == "done")
    assert done["stopped_by"] == "compute_budget" and done["compute_s"] >= budget
    # Trials started only while the budget was left: without the last one, the finished trials had not spent it.
    finished = json.loads((Path(base.run_dir) / "checkpoint.json").read_text())["finished"]
    spent = [r["finished"] - r["started"] for _, r in finished]
    assert abs(sum(spent) - done["compute_s"]) < 1e-6 and sum(spent[:-1]) < budget
    metrics = json.loads((Path(base.run_dir) / "metrics.json").read_text())
    with session_scope() as s:
        row = compare_runs(s, [search_id]).runs[0]
    # Both sides by the one headline rule (backend/headline.py): the evaluate stage's foreground-class test IoU.
    assert row.baseline_runs == [base_id] and row.baseline_iou == [metrics["iou"][1]]
    searched = json.loads((Path(search.run_dir) / "metrics.json").read_text())["iou"][1]
    assert row.iou == searched and abs(row.iou_vs_baseline - (searched - metrics["iou"][1])) < 1e-9

    # The hand-designed baseline: the retrain and evaluate stages only, on its network, labelled with it.
    hand = _ended(net_id, deadline, "hand-designed baseline")
    assert hand.status == "succeeded", hand.status_reason
    assert not (Path(hand.run_dir) / "genotype.json").exists()
    evaluation = next(e["payload"] for e in _log(hand.run_dir) if e["kind"] == "evaluation"
                      and e["payload"]["stage"] == "evaluate")
    assert evaluation["label"] == "plain-unet c4 d1" and evaluation["curves"]
    with session_scope() as s:
        row = compare_runs(s, [search_id]).runs[0]
    assert [(n.run, n.label, n.curves) for n in row.networks] == [(net_id, "plain-unet c4 d1", evaluation["curves"])]
    assert row.baseline_runs == [base_id] and row.curves
