"""`nasforge plan`: its measured step time predicts the step time of the real search that follows it (within 30%,
on this machine), and it refuses what it cannot model with a message naming the field."""
from __future__ import annotations

import json
import statistics

import pytest
import yaml
from typer.testing import CliRunner

from nas_core.cli import app
from nas_core.config import parse_experiment
from nas_core.search.loop import BilevelSearch
from nas_core.search.reporting import EventSink
from tests.search.conftest import read_log, tiny_experiment

TOLERANCE = 0.30


def _experiment(tmp_path, **search):
    body = tiny_experiment(epochs=1, events_every_steps=1, **search)
    body["data"]["num_tiles"] = 40  # ~6 steps an epoch at batch 4
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(body))
    return path, parse_experiment(body)


def _measured_step_s(log) -> float:
    """Median time between consecutive per-step alpha events of one epoch: one search step each."""
    steps = [(e["payload"]["epoch"], e["time"]) for e in log if e["kind"] == "alpha"]
    gaps = [b[1] - a[1] for a, b in zip(steps, steps[1:]) if a[0] == b[0]]
    return statistics.median(gaps)


@pytest.mark.slow  # a plan and a search, ~25 s on the shared 2-core machine
def test_plan_predicts_the_step_time_of_the_search(tmp_path):
    path, cfg = _experiment(tmp_path)
    r = CliRunner().invoke(app, ["plan", str(path), "--device", "cpu", "--steps", "4", "--json"])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    assert plan["params_weights"] > 0 and plan["params_arch"] > 0 and plan["activation_bytes_per_image"] > 0
    assert 1 <= plan["max_batch"] and plan["memory_bytes"] > plan["state_bytes"]
    with EventSink(tmp_path / "events.jsonl", heartbeat_s=0) as events:
        result = BilevelSearch(cfg, events, tmp_path / "last.pt", device="cpu").run()
    assert result.steps == plan["steps_per_epoch"] * plan["epochs"]
    measured = _measured_step_s(read_log(tmp_path / "events.jsonl"))
    print(f"plan {plan['step_s']:.4f} s per step, search {measured:.4f} s")
    assert abs(plan["step_s"] - measured) <= TOLERANCE * measured, (plan["step_s"], measured)


def test_plan_refuses_a_discrete_method(tmp_path):
    path, _ = _experiment(tmp_path, method="random")
    r = CliRunner().invoke(app, ["plan", str(path)])
    assert r.exit_code == 2 and "search.method" in r.output
    r = CliRunner().invoke(app, ["plan", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "no such experiment file" in r.output
