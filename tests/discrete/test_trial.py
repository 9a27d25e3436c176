"""One trial in a real child process: a result, a raised error, a kill -9 and an overrun each come back as data."""
from __future__ import annotations

import pytest

from nas_core.discrete.trial import SYNTHETIC, run_inline, run_trial, synthetic_objective


def _spec(**params) -> dict:
    return {"trial": 7, "attempt": 0, "genotype": {"choices": [1, 0, 2]}, "budget": {"epochs": 1}, "seed": 3,
            "objective": SYNTHETIC, "params": params, "time_limit_s": 20}


def test_ok_trial_returns_the_objectives_score(tmp_path):
    result = run_trial(_spec(), worker=2, run_dir=tmp_path)
    expected = synthetic_objective({"choices": [1, 0, 2]}, {}, 3, {})["iou"]
    assert result["status"] == "ok" and result["iou"] == pytest.approx(expected)
    assert result["worker"] == 2 and result["params_count"] == 3000 and result["train_time_s"] >= 0
    assert (tmp_path / "trials" / "trial-7-0.log").exists()


def test_synthetic_objective_is_deterministic_and_depends_on_the_genotype():
    a = synthetic_objective({"choices": [1, 0, 2]}, {}, 0, {})["iou"]
    assert a == synthetic_objective({"choices": [1, 0, 2]}, {}, 99, {})["iou"]
    assert a != synthetic_objective({"choices": [1, 0, 3]}, {}, 0, {})["iou"]
    assert 0 <= a <= 1


def test_raising_trial_reports_error_with_its_message():
    result = run_trial(_spec(raise_on=[7]))
    assert result["status"] == "error" and result["iou"] is None
    assert "synthetic failure of trial 7" in result["error"]


def test_killed_trial_reports_the_signal():
    result = run_trial(_spec(kill_on=[7]))
    assert result["status"] == "killed" and "SIGKILL" in result["error"]


def test_overrunning_trial_is_killed_at_its_limit_and_heartbeats_meanwhile():
    beats = []
    spec = {**_spec(hang_on=[7]), "time_limit_s": 1.0}
    result = run_trial(spec, heartbeat=lambda: beats.append(1), heartbeat_s=0.2)
    assert result["status"] == "timeout" and "1.0 s" in result["error"]
    assert result["finished"] - result["started"] < 10
    assert len(beats) >= 2


def test_faults_fire_on_the_first_attempt_only():
    assert run_trial({**_spec(raise_on=[7]), "attempt": 1})["status"] == "ok"


def test_objective_outside_the_allow_list_is_refused():
    with pytest.raises(ValueError, match="objective: 'os:system' is not an allowed trial function"):
        run_trial({**_spec(), "objective": "os:system"})


def test_inline_trial_catches_the_error():
    result = run_inline(_spec(raise_on=[7]))
    assert result["status"] == "error" and "RuntimeError" in result["error"]
    assert run_inline(_spec())["status"] == "ok"
