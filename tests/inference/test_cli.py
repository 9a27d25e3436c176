"""`nasforge predict | evaluate | export` as a user types them: what they print, and bad input named with the fix."""
from __future__ import annotations

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from nas_core.cli import app
from nas_core.rundir import RunDir, RunLock


def test_predict_a_folder_of_scenes_and_refuse_what_cannot_be_used(run_dir, tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for i in range(2):
        Image.fromarray((np.random.default_rng(i).random((48, 80, 3)) * 255).astype(np.uint8)).save(scenes / f"s{i}.png")
    r = CliRunner().invoke(app, ["predict", str(run_dir), str(scenes), "--out", str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert r.output.count("object(s)") == 2 and (tmp_path / "out" / "s1.mask.png").exists()
    r = CliRunner().invoke(app, ["predict", str(tmp_path / "no-run"), str(scenes), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and f"MODEL {tmp_path / 'no-run'}: no such run directory" in r.output
    r = CliRunner().invoke(app, ["export", str(run_dir), "--format", "tflite"])
    assert r.exit_code == 2 and "--format 'tflite': use one of torchscript, onnx" in r.output


def test_evaluate_prints_the_scores_and_waits_for_no_running_search(run_dir, second_dataset):
    r = CliRunner().invoke(app, ["evaluate", str(run_dir), str(second_dataset)])
    assert r.exit_code == 0, r.output
    assert "mIoU" in r.output and f"written to {RunDir(run_dir).evaluations / second_dataset.name}.json" in r.output
    with RunLock(RunDir(run_dir).lock):
        r = CliRunner().invoke(app, ["evaluate", str(run_dir), str(second_dataset)])
    assert r.exit_code == 2 and "evaluate it once the search has ended" in r.output
