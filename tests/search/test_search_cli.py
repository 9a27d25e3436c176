"""`nasforge search` in process: a whole tiny run with its stages, the `run:` stage override, clear errors for a bad
config, a taken run directory and a missing stage input; and the checkpoint's own guarantees."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from nas_core.cli import app
from nas_core.search.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from nas_core.search.event_schema import validate_events
from tests.search.conftest import read_log, tiny_experiment


def _write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def _invoke(*args):
    return CliRunner().invoke(app, ["search", *map(str, args), "--threads", "1"])


def test_whole_run_then_single_stages(tmp_path):
    exp = _write(tmp_path / "exp.yaml", tiny_experiment(method="gaea"))
    run = tmp_path / "run"
    r = _invoke(exp, "--run-dir", run)
    assert r.exit_code == 0, r.output
    for name in ("events.jsonl", "checkpoints/last.pt", "checkpoints/retrain.pt", "genotype.json", "metrics.json"):
        assert (run / name).exists(), name
    log = read_log(run / "events.jsonl")
    validate_events(log)
    stages = [e["payload"]["stage"] for e in log if e["kind"] == "status" and e["payload"]["state"] == "running"]
    assert stages == ["search", "decode", "retrain", "evaluate"]
    assert log[-1]["kind"] == "status" and log[-1]["payload"]["state"] == "succeeded"
    assert {e["payload"]["stage"] for e in log if e["kind"] == "evaluation"} == {"retrain", "evaluate"}

    # The same directory again without --resume is refused, naming the fix.
    r = _invoke(exp, "--run-dir", run)
    assert r.exit_code == 2 and "--resume" in r.output
    # --resume on a finished run has nothing left to do.
    n = len(log)
    r = _invoke(exp, "--run-dir", run, "--resume")
    assert r.exit_code == 0, r.output
    after = read_log(run / "events.jsonl")[n:]
    assert [e["kind"] for e in after] == ["log", "status"]
    assert after[0]["payload"]["message"].startswith("resumed: search, decode, retrain, evaluate already done")

    # The worker's `run: {stage: decode}` override reruns only the decode, from the final checkpoint.
    genotype = (run / "genotype.json").read_text()
    (run / "genotype.json").unlink()
    override = _write(tmp_path / "config.yaml", {**tiny_experiment(method="gaea"), "run": {"stage": "decode"}})
    r = _invoke(override, "--run-dir", run)
    assert r.exit_code == 0, r.output
    assert (run / "genotype.json").read_text() == genotype
    validate_events(read_log(run / "events.jsonl"))


def test_bad_config_names_the_field_and_tells_the_watcher(tmp_path):
    data = tiny_experiment()
    data["search"]["pc_k"] = 0
    run = tmp_path / "run"
    run.mkdir()
    r = _invoke(_write(tmp_path / "exp.yaml", data), "--run-dir", run)
    assert r.exit_code == 2
    assert "search.pc_k" in r.output
    last = read_log(run / "events.jsonl")[-1]
    assert last["kind"] == "status" and last["payload"]["state"] == "failed" and "search.pc_k" in last["payload"]["error"]


def test_a_stage_without_its_input_fails_clearly(tmp_path):
    run = tmp_path / "run"
    r = _invoke(_write(tmp_path / "exp.yaml", tiny_experiment()), "--run-dir", run, "--stage", "retrain")
    assert r.exit_code == 1
    assert "genotype.json" in r.output and "decode stage first" in r.output
    assert read_log(run / "events.jsonl")[-1]["payload"]["state"] == "failed"
    r = _invoke(tmp_path / "exp.yaml", "--run-dir", run, "--stage", "bogus")
    assert r.exit_code == 2 and "use one of search, decode, retrain, evaluate" in r.output


def test_checkpoint_restores_every_rng_and_refuses_another_experiment(tmp_path):
    path = tmp_path / "ck" / "last.pt"
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_checkpoint(path, {"fingerprint": "abc", "epoch": 3, "weights": torch.arange(4.0)})
    expected = (random.random(), np.random.rand(), torch.rand(2))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    state = load_checkpoint(path, "abc")
    set_rng_state(state["rng"])
    assert (random.random(), np.random.rand()) == expected[:2] and torch.equal(torch.rand(2), expected[2])
    assert state["epoch"] == 3 and torch.equal(state["weights"], torch.arange(4.0))
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left behind
    with pytest.raises(ValueError, match="different experiment"):
        load_checkpoint(path, "xyz")
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable checkpoint"):
        load_checkpoint(path)


def test_examples_parse_and_helicopter_ones_are_synthetic():
    from pathlib import Path

    from nas_core.config import load_experiment

    root = Path(__file__).resolve().parents[2] / "examples"
    seen = {}
    for path in sorted(root.glob("*-*.yaml")):
        cfg = load_experiment(path)
        seen[path.stem] = (cfg.search.method, cfg.data.source)
    for m in ("darts", "pcdarts", "gaea"):
        assert seen[f"{m}-helicopters"] == (m, "synthetic")
        assert seen[f"{m}-airbus"] == (m, "prepared")
