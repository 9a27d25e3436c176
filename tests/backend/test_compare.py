"""Comparison of runs: per-epoch and final alpha, genotype diff, metric series, IoU against the random baseline;
the headline IoU rule (backend/headline.py) and that the run endpoints return the same headline as /api/compare."""
from __future__ import annotations

import pytest

from backend import crud


def _curves(ap):
    # nas_core/metrics/scores.curves: per class, per object IoU threshold.
    return {"1": {"0.5": {"ap": ap, "precision": [1.0, ap], "recall": [0.0, 1.0], "score": [0.9, 0.1]}}}


def _seed_run(session, exp, method, genotype, ious, baseline_ious=()):
    run, bases = crud.launch(session, exp, method=method, baselines=bool(baseline_ious))
    events = []
    for epoch, iou in enumerate(ious, start=1):
        # Shaped as nas_core/search writes them (loop.py, reporting.py, stages.py).
        events += [{"kind": "alpha", "payload": {"epoch": epoch, "step": 10 * epoch, "cells": {"normal": {"alpha": [[0.1 * epoch, 1 - 0.1 * epoch]]}}}},
                   {"kind": "metric", "payload": {"stage": "search", "epoch": epoch, "step": 10 * epoch, "val_iou": iou,
                                                  "train_loss": 1 - iou, "arch_updates": True}},
                   {"kind": "progress", "payload": {"stage": "search", "epoch": epoch, "epochs": len(ious), "fraction": epoch / len(ious)}}]
    events += [{"kind": "genotype", "payload": {"stage": "search", "epoch": len(ious), "genotype": genotype}},
               {"kind": "evaluation", "payload": {"stage": "evaluate", "split": "test", "miou": ious[-1] + 0.01,
                                                  "iou": [0.9, ious[-1]], "tiles": 8, "curves": _curves(0.8)}}]
    crud.ingest_events(session, run.id, [dict(e, seq=i) for i, e in enumerate(events, start=1)], redis=None)
    for i, (base, iou) in enumerate(zip(bases, baseline_ious)):
        if i == 0:  # a retrained and evaluated baseline: its evaluate stage's foreground-class test IoU counts
            crud.ingest_events(session, base.id, [{"seq": 1, "kind": "evaluation", "payload": {
                "stage": "evaluate", "split": "test", "miou": 0.9, "iou": [0.99, iou]}}], redis=None)
        else:  # a discrete search as nas_core/discrete reports it: its best final candidate counts
            crud.ingest_events(session, base.id, [
                {"seq": 1, "kind": "candidate", "payload": {"trial": 0, "iou": iou - 0.2, "genotype": genotype, "final": True}},
                {"seq": 2, "kind": "candidate", "payload": {"trial": 1, "iou": iou, "genotype": genotype, "final": True}},
                {"seq": 3, "kind": "candidate", "payload": {"trial": 2, "iou": 0.99, "final": False, "stage": "prescreen"}}],
                redis=None)
    return run, bases


def test_compare_two_runs(client, session, tokens):
    net = {"name": "plain-unet", "channels": 4, "depth": 1}
    exp_id = client.post("/api/experiments", json={"name": "c", "baseline": {"random": True, "seeds": 2, "networks": [net]}},
                         headers=tokens.write).json()["id"]
    exp = crud.get_experiment(session, exp_id)
    # Genotype.to_dict(): per cell type, nodes of (op, input) pairs and the concat list.
    g1 = {"cells": {"normal": {"nodes": [[["sep_conv_3x3", 0], ["skip_connect", 1]]], "concat": [2]}}}
    g2 = {"cells": {"normal": {"nodes": [[["sep_conv_3x3", 0], ["max_pool_3x3", 1]]], "concat": [2]}}}
    a, bases = _seed_run(session, exp, "darts", g1, [0.5, 0.6, 0.7], baseline_ious=(0.4, 0.5))
    bases, hand = bases[:2], bases[2]
    crud.ingest_events(session, hand.id, [{"seq": 1, "kind": "evaluation", "payload": {
        "stage": "evaluate", "label": "plain-unet c4 d1", "split": "test", "miou": 0.6, "iou": [0.9, 0.3],
        "curves": _curves(0.6)}}], redis=None)
    b, _ = _seed_run(session, exp, "gaea", g2, [0.55, 0.65])
    r = client.get("/api/compare", params={"runs": [a.id, b.id]}, headers=tokens.read)
    assert r.status_code == 200, r.text
    ra, rb = r.json()["runs"]
    assert ra["run"]["id"] == a.id and rb["run"]["method"] == "gaea"
    final_alpha = ra["final_alpha"]["cells"]["normal"]["alpha"]
    assert [x["epoch"] for x in ra["alpha"]] == [1, 2, 3] and final_alpha == [[pytest.approx(0.3), pytest.approx(0.7)]]
    assert [p[0] for p in ra["metrics"]["search.val_iou"]] == [1, 2, 3]
    assert ra["final_metrics"]["search.train_loss"] == pytest.approx(0.3)
    assert "search.step" not in ra["metrics"] and "search.arch_updates" not in ra["metrics"]
    assert ra["final_metrics"]["evaluate.miou"] == pytest.approx(0.71) and "evaluate.tiles" not in ra["final_metrics"]
    # The evaluate stage's foreground-class (class 1) test IoU, preferred to the mIoU and to the last validation IoU.
    assert ra["iou"] == pytest.approx(0.7) and ra["headline"] == {
        "value": pytest.approx(0.7), "label": "test IoU, foreground class (evaluate stage)", "source": "evaluate",
        "background_only": False}
    assert ra["run"]["headline"] == ra["headline"]
    assert ra["baseline_runs"] == sorted(x.id for x in bases) and ra["baseline_iou"] == [0.4, 0.5]
    assert ra["iou_vs_baseline"] == pytest.approx(0.7 - 0.45)
    # The hand-designed baseline is not a random one: its curves go beside the run's, under its network's label.
    assert ra["curves"]["1"]["0.5"]["ap"] == 0.8
    assert [(n["run"], n["label"], n["headline"]["value"], n["curves"]["1"]["0.5"]["ap"]) for n in ra["networks"]] == [
        (hand.id, "plain-unet c4 d1", pytest.approx(0.3), 0.6)]
    assert rb["baseline_runs"] == [] and rb["iou_vs_baseline"] is None
    rbase = client.get("/api/compare", params={"runs": [bases[1].id, a.id]}, headers=tokens.read).json()["runs"][0]
    assert rbase["iou"] == pytest.approx(0.5) and rbase["best_candidate"]["trial"] == 1 and rbase["genotype"] == g1
    assert rbase["headline"]["label"] == "best candidate validation IoU (discrete search)"
    # The run endpoints give the same headline as the comparison.
    for run_id, expected in ((a.id, ra["headline"]), (bases[1].id, rbase["headline"])):
        assert client.get(f"/api/runs/{run_id}", headers=tokens.read).json()["headline"] == expected
        listed = client.get("/api/runs", params={"experiment_id": exp_id, "limit": 500}, headers=tokens.read).json()["items"]
        assert next(r["headline"] for r in listed if r["id"] == run_id) == expected
    # Only the edge whose op differs shows up in the diff, with each run's value.
    assert r.json()["genotype_diff"] == [{"path": "cells.normal.nodes.0.1", "values": [["skip_connect", 1], ["max_pool_3x3", 1]]}]
    assert crud.get_run(session, a.id).progress == pytest.approx(1.0)


def test_compare_needs_two_to_four_existing_runs(client, session, tokens):
    exp = crud.get_experiment(session, client.post("/api/experiments", json={"name": "c"}, headers=tokens.write).json()["id"])
    run, _ = crud.launch(session, exp, baselines=False)
    for runs in ([run.id], [run.id, run.id], [1, 2, 3, 4, 5]):
        r = client.get("/api/compare", params={"runs": runs}, headers=tokens.read)
        assert r.status_code == 422 and "two to four" in r.json()["detail"]
    assert client.get("/api/compare", params={"runs": [run.id, 999]}, headers=tokens.read).status_code == 404


def test_headline_names_what_it_is_when_there_is_no_evaluate_stage(client, session, tokens):
    exp = crud.get_experiment(session, client.post("/api/experiments", json={"name": "h"}, headers=tokens.write).json()["id"])
    run, _ = crud.launch(session, exp, baselines=False)
    assert client.get(f"/api/runs/{run.id}", headers=tokens.read).json()["headline"] == {
        "value": None, "label": "no IoU yet", "source": None, "background_only": False}
    crud.ingest_events(session, run.id, [
        {"seq": 1, "kind": "metric", "payload": {"stage": "search", "epoch": 1, "val_iou": 0.4}},
        {"seq": 2, "kind": "metric", "payload": {"stage": "search", "epoch": 2, "val_iou": 0.6}},
        # The retrain stage's evaluation is on the validation half: not a test result, not the headline.
        {"seq": 3, "kind": "evaluation", "payload": {"stage": "retrain", "split": "val", "pixel": {"miou": 0.9}}}],
        redis=None)
    assert client.get(f"/api/runs/{run.id}", headers=tokens.read).json()["headline"] == {
        "value": pytest.approx(0.6), "label": "validation mIoU during search", "source": "search", "background_only": False}
    # Three classes: the mean over the foreground classes (1 and 2), never over the background.
    crud.ingest_events(session, run.id, [{"seq": 4, "kind": "evaluation", "payload": {
        "stage": "evaluate", "split": "test", "iou": [0.99, 0.5, 0.3]}}], redis=None)
    assert client.get(f"/api/runs/{run.id}", headers=tokens.read).json()["headline"] == {
        "value": pytest.approx(0.4), "label": "test mIoU over the foreground classes (evaluate stage)", "source": "evaluate",
        "background_only": False}


def test_a_long_alpha_history_comes_thinned_evenly_with_its_first_and_last_frame(client, session, tokens):
    from backend.compare import ALPHA_DECIMALS, MAX_ALPHA_FRAMES, spaced

    exp = crud.get_experiment(session, client.post("/api/experiments", json={"name": "long"}, headers=tokens.write).json()["id"])
    run, _ = crud.launch(session, exp, baselines=False)
    epochs = 3 * MAX_ALPHA_FRAMES + 7
    crud.ingest_events(session, run.id, [{"seq": e + 1, "kind": "alpha", "payload": {
        "epoch": e, "step": e, "cells": {"normal": {"alpha": [[1 / 3 + e * 1e-6, 2 / 3 - e * 1e-6]], "edges": ["0->2"],
                                                    "ops": ["none", "sep_conv_3x3"]}}}} for e in range(epochs)], redis=None)
    other, _ = crud.launch(session, exp, baselines=False)
    ra = client.get("/api/compare", params={"runs": [run.id, other.id]}, headers=tokens.read).json()["runs"][0]
    got = [f["epoch"] for f in ra["alpha"]]
    assert ra["alpha_total"] == epochs and len(got) == MAX_ALPHA_FRAMES
    assert got[0] == 0 and got[-1] == epochs - 1 and ra["final_alpha"]["epoch"] == epochs - 1
    gaps = {b - a for a, b in zip(got, got[1:])}
    assert gaps <= {3, 4}, gaps  # evenly spread: 306 steps over 99 gaps
    last = ra["alpha"][-1]["cells"]["normal"]["alpha"][0]
    assert last == [round(1 / 3 + (epochs - 1) * 1e-6, ALPHA_DECIMALS), round(2 / 3 - (epochs - 1) * 1e-6, ALPHA_DECIMALS)]
    assert spaced(5, 10) == [0, 1, 2, 3, 4] and spaced(0, 10) == []
    # The names once: the first frame carries the cell's edges and ops, later ones only their weights.
    assert ra["alpha"][0]["cells"]["normal"]["edges"] == ["0->2"] and ra["alpha"][0]["cells"]["normal"]["ops"][1] == "sep_conv_3x3"
    assert all(set(f["cells"]["normal"]) == {"alpha"} for f in ra["alpha"][1:])
