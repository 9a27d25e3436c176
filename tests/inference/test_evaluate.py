"""`evaluate_dataset` on a second prepared dataset: the numbers are the metrics computed by hand on its tiles, go
to RUN/evaluations/ and to the event log (tagged with the dataset), never to metrics.json, and wait for no lock
they cannot take."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nas_core.data.manifest import load_manifest
from nas_core.data.readers import read_array
from nas_core.events import read_events
from nas_core.inference import evaluate_dataset
from nas_core.metrics import (average_precision, confusion_matrix, dice, match_objects, pixel_iou,
                              precision_recall_curve)
from nas_core.rundir import RunDir, RunDirBusy, RunLock


def _by_hand(predictor, root) -> dict:
    """Tile by tile with the metrics functions themselves: one confusion matrix, and each tile's objects matched
    on their own, pooled into one PR curve per IoU threshold."""
    manifest = load_manifest(root)
    k = predictor.num_classes
    cm = np.zeros((k, k), np.int64)
    scores, tp, num_gt = [], {t: [] for t in predictor.iou_thresholds}, 0
    for t in manifest["tiles"]:
        image, mask = read_array(root / t["image"]), read_array(root / t["mask"]).astype(np.int64)
        prob = predictor.predict_tiles(image[None])[0]
        pred = prob.argmax(0)
        cm += confusion_matrix(pred, mask, k)
        m = match_objects(pred == 1, prob[1], mask == 1, predictor.iou_thresholds)
        scores.append(m["scores"])
        num_gt += m["num_gt"]
        for thr in tp:
            tp[thr].append(m["tp"][thr])
    ap = {}
    for thr in tp:
        p, r, _ = precision_recall_curve(np.concatenate(scores), np.concatenate(tp[thr]), num_gt)
        ap[str(thr)] = average_precision(p, r) if num_gt else None
    return {"iou": pixel_iou(cm)["per_class"], "dice": dice(cm)["per_class"], "ap": ap, "confusion": cm.tolist(),
            "tiles": len(manifest["tiles"]), "num_gt": num_gt}


def test_metrics_on_a_second_dataset_are_the_hand_computed_ones(predictor, run_dir, second_dataset):
    rd = RunDir(run_dir)
    metrics_before = rd.metrics.read_bytes()
    events_before = sum(1 for _ in read_events(rd.events))
    got = evaluate_dataset(predictor, second_dataset)
    want = _by_hand(predictor, second_dataset)
    assert want["num_gt"] > 0, "the second dataset must hold objects, or AP would check nothing"
    assert got["tiles"] == want["tiles"] and got["confusion"] == want["confusion"]
    for key in ("iou", "dice"):
        assert got[key] == pytest.approx(want[key], abs=1e-12)
    for thr, value in want["ap"].items():
        assert got["ap"][thr] == pytest.approx(value, abs=1e-12)
    assert got["curves"]["1"]["0.5"]["num_gt"] == want["num_gt"]
    assert math.isclose(got["miou"], float(np.mean(want["iou"])), abs_tol=1e-12)

    # Its own file and an event tagged with the dataset; the run's test metrics untouched.
    name = second_dataset.name
    assert json.loads((rd.evaluations / f"{name}.json").read_text()) == got
    assert rd.metrics.read_bytes() == metrics_before
    events = [e for _, e in read_events(rd.events)]
    assert len(events) == events_before + 1
    last = events[-1]
    assert last["kind"] == "evaluation" and last["payload"]["dataset"] == name
    assert last["payload"]["stage"] is None, "not the evaluate stage's own test score (the run's headline)"


def test_a_run_a_search_writes_is_refused_and_left_as_it_was(predictor, run_dir, second_dataset):
    rd = RunDir(run_dir)
    rd.evaluations.mkdir(exist_ok=True)
    before = (sorted(rd.evaluations.iterdir()), rd.events.read_bytes())
    with RunLock(rd.lock):
        with pytest.raises(RunDirBusy, match="another search is writing"):
            evaluate_dataset(predictor, second_dataset)
    assert (sorted(rd.evaluations.iterdir()), rd.events.read_bytes()) == before


def test_a_missing_dataset_is_named_with_the_fix(predictor, tmp_path):
    from nas_core.inference import InferenceError

    with pytest.raises(InferenceError, match="no prepared dataset here"):
        evaluate_dataset(predictor, tmp_path / "missing")
