"""`export_model`: TorchScript and ONNX files that predict what the PyTorch network predicts (to 1e-4), carry
their card inside, and load on their own; and the evaluate stage's sample overlays and its word on empty PR
curves."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from nas_core.inference import export_model, load_model, render_overlay
from nas_core.inference.overlay import FN, FP, TP
from nas_core.metrics import empty_reason
from nas_core.rundir import RunDir, read_json


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_file_agrees_with_pytorch_and_stands_alone(fmt, predictor, run_dir, tmp_path):
    r = export_model(run_dir, fmt, tmp_path / fmt)
    assert r["parity"] <= 1e-4
    # Alone in another folder (no card beside it): the card travels inside the file.
    alone = tmp_path / "alone" / r["model"].name
    alone.parent.mkdir()
    shutil.copy(r["model"], alone)
    exported = load_model(alone)
    tiles = (np.random.default_rng(3).random((3, 64, 96, 3)) * 255).astype(np.uint8)  # another size than trained
    np.testing.assert_allclose(exported.predict_tiles(tiles), predictor.predict_tiles(tiles), atol=1e-4)
    card = json.loads(r["card"].read_text())
    assert exported.card["genotype"] == card["genotype"] == json.loads(RunDir(run_dir).genotype.read_text())
    assert card["classes"] == ["background", "helicopter"] and card["tile_size"] == 64
    assert card["normalisation"] == predictor.normalisation and len(card["normalisation"]["mean"]) == 3
    assert card["metrics"] == read_json(RunDir(run_dir).metrics)
    assert card["data"]["licence"] and card["exported"]["parity_max_abs_diff"] == r["parity"]


def test_the_evaluate_stage_leaves_sample_overlays_and_says_why_a_curve_is_empty(run_dir):
    rd = RunDir(run_dir)
    index = read_json(rd.samples / "index.json")
    assert index["panels"] == ["image", "truth", "prediction", "errors"] and index["samples"]
    for s in index["samples"]:
        h, w = s["size"]
        png = np.asarray(Image.open(rd.samples / s["file"]))
        assert png.shape == (h, 4 * w + 3 * 2, 3)  # four panels and the lines between them
    metrics = read_json(rd.metrics)
    assert "pr_empty_reason" in metrics
    event = [json.loads(line) for line in rd.events.read_text().splitlines()
             if '"evaluation"' in line and '"stage":"evaluate"' in line][-1]["payload"]
    curve = event["curves"]["1"]["0.5"]
    assert curve["empty_reason"] == empty_reason(curve["num_pred"], curve["num_gt"])
    assert event["pr_empty_reason"] == metrics["pr_empty_reason"]


def test_overlay_colours_hits_false_alarms_and_misses():
    truth = np.array([[1, 1, 0, 0]])
    pred = np.array([[1, 0, 1, 0]])
    out = render_overlay(np.full((1, 4, 3), 100, np.uint8), truth, pred)
    assert [tuple(p) for p in out[0, :3]] == [TP, FN, FP]
    assert len(set(out[0, 3])) == 1, "a right background pixel is the image in grey"
    assert empty_reason(0, 3) == "no predicted objects" and empty_reason(2, 0) == "no ground-truth objects"
    assert empty_reason(2, 3) is None
