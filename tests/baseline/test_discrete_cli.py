"""`nasforge search` on a discrete method, as a real process: the trials, the best candidate as genotype.json, then
the continuous run's retrain and evaluate stages (metrics.json, an `evaluation` event), ending `succeeded`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.baseline.conftest import tiny_experiment

NASFORGE = str(Path(sys.executable).with_name("nasforge"))


def _run(tmp_path: Path, *args: str, **search) -> tuple[subprocess.CompletedProcess, Path, list[dict]]:
    cfg = tmp_path / "exp.yaml"
    if not cfg.exists():
        cfg.write_text(yaml.safe_dump(tiny_experiment("random", **search)))
    run_dir = tmp_path / "run"
    out = subprocess.run([NASFORGE, "search", str(cfg), "--run-dir", str(run_dir), "--threads", "1", *args],
                         capture_output=True, text=True, timeout=180)
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return out, run_dir, events


def test_random_search_retrains_and_evaluates_its_best_candidate(tmp_path):
    out, run_dir, events = _run(tmp_path, trials=2)
    assert out.returncode == 0, out.stderr
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    cands = [e["payload"] for e in events if e["kind"] == "candidate" and e["payload"]["final"]]
    assert len(cands) == 2
    best = max(cands, key=lambda c: c["iou"])
    assert json.loads((run_dir / "genotype.json").read_text()) == best["genotype"]
    stages = [e["payload"].get("stage") for e in events if e["kind"] == "status" and e["payload"]["state"] == "running"
              and "stage" in e["payload"]]
    assert stages == ["retrain", "evaluate"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    evaluation = [e["payload"] for e in events if e["kind"] == "evaluation" and e["payload"].get("stage") == "evaluate"]
    assert len(evaluation) == 1 and evaluation[0]["miou"] == metrics["miou"] and 0 <= metrics["miou"] <= 1
    assert metrics["split"] == "test" and metrics["params"] > 0
    assert events[-1]["kind"] == "status" and events[-1]["payload"]["state"] == "succeeded"

    # Resumed after metrics.json was lost: neither the trials nor the retrain run again, only the evaluation.
    (run_dir / "metrics.json").unlink()
    out, run_dir, again = _run(tmp_path, "--resume")
    assert out.returncode == 0, out.stderr
    new = again[len(events):]
    assert not [e for e in new if e["kind"] in ("candidate", "metric")]
    assert [e["payload"].get("stage") for e in new if e["kind"] == "status"] == ["evaluate", None]
    assert json.loads((run_dir / "metrics.json").read_text())["miou"] == metrics["miou"], "same weights, same score"


def test_a_compute_budget_stops_the_trials_before_the_trial_count(tmp_path):
    out, run_dir, events = _run(tmp_path, trials=50, compute_budget_s=0.5)
    assert out.returncode == 0, out.stderr
    done = [e["payload"] for e in events if e["kind"] == "status" and e["payload"]["state"] == "done"][-1]
    assert done["stopped_by"] == "compute_budget" and done["trials"] == 1 and done["compute_s"] >= 0.5
    assert (run_dir / "metrics.json").exists()


def test_all_trials_failing_ends_failed_with_where_the_logs_are(tmp_path):
    cfg = tiny_experiment("random", trials=1)
    cfg["data"] = {**cfg["data"], "source": "prepared", "path": str(tmp_path / "no-such-dataset")}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(cfg))
    out, run_dir, events = _run(tmp_path)
    assert out.returncode == 1
    last = events[-1]["payload"]
    assert events[-1]["kind"] == "status" and last["state"] == "failed"
    assert "all 1 trials failed" in last["error"] and str(run_dir / "trials") in last["error"]
    assert not (run_dir / "genotype.json").exists() and not (run_dir / "metrics.json").exists()
