"""Every status state and event kind the code writes validates against the published schema: the logs of a
continuous run, a discrete run, a retrain run (of the continuous run's genotype), a hand-designed baseline (a tiny
ResNeXt U-Net) and failed runs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nas_core.cli import app
from nas_core.events import EventKind, StatusState
from nas_core.rundir import RunDir, RunOverrides, write_config
from nas_core.search.event_schema import EVENT_SCHEMA, validate_events
from tests.search.conftest import read_log, tiny_experiment


def _search(config, run_dir, *args):
    return CliRunner().invoke(app, ["search", str(config), "--run-dir", str(run_dir), "--threads", "1", *args])


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """One run of each kind, in one module so the tiny searches run once."""
    tmp = tmp_path_factory.mktemp("logs")
    out = {}
    exp = tiny_experiment(method="darts")
    write_config(tmp / "darts.yaml", exp)
    r = _search(tmp / "darts.yaml", tmp / "darts")
    assert r.exit_code == 0, r.output
    out["continuous"] = RunDir(tmp / "darts")

    discrete = tiny_experiment(method="random", trials=2, trial_epochs=1)
    write_config(tmp / "random.yaml", discrete)
    r = _search(tmp / "random.yaml", tmp / "random")
    assert r.exit_code == 0, r.output
    out["discrete"] = RunDir(tmp / "random")

    genotype = json.loads(out["continuous"].genotype.read_text())
    write_config(tmp / "retrain.yaml", exp, RunOverrides(kind="retrain", parent_run_id=1, genotype=genotype))
    r = _search(tmp / "retrain.yaml", tmp / "retrain")
    assert r.exit_code == 0, r.output
    out["retrain"] = RunDir(tmp / "retrain")

    net = {"name": "resnext-unet", "channels": 4, "depth": 1, "backbone": {"cardinality": 2, "bottleneck_width": 2}}
    write_config(tmp / "network.yaml", {**exp, "baseline": {"networks": [net]}},
                 RunOverrides(kind="baseline", baseline_of=1, network=net))
    r = _search(tmp / "network.yaml", tmp / "network")
    assert r.exit_code == 0, r.output
    out["network"] = RunDir(tmp / "network")

    # Failed three ways: a bad config, a stage without its input, a retrain run without a genotype.
    (tmp / "failed-config").mkdir()
    (tmp / "bad.yaml").write_text(yaml.safe_dump({**exp, "search": {"method": "darts", "pc_k": 99}}))
    assert _search(tmp / "bad.yaml", tmp / "failed-config").exit_code == 2
    out["failed-config"] = RunDir(tmp / "failed-config")
    assert _search(tmp / "darts.yaml", tmp / "failed-stage", "--stage", "evaluate").exit_code == 1
    out["failed-stage"] = RunDir(tmp / "failed-stage")
    (tmp / "failed-retrain").mkdir()
    write_config(tmp / "retrain-none.yaml", exp, RunOverrides(kind="retrain", parent_run_id=1))
    assert _search(tmp / "retrain-none.yaml", tmp / "failed-retrain").exit_code == 2
    out["failed-retrain"] = RunDir(tmp / "failed-retrain")
    (tmp / "failed-network").mkdir()
    bad = {"name": "resnext-unet", "backbone": {"cardinality": 0}}
    (tmp / "bad-network.yaml").write_text(yaml.safe_dump({**exp, "baseline": {"networks": [net, bad]}}))
    assert _search(tmp / "bad-network.yaml", tmp / "failed-network").exit_code == 2
    out["failed-network"] = RunDir(tmp / "failed-network")
    return {name: read_log(rd.events) for name, rd in out.items()} | {"dirs": out}


@pytest.mark.parametrize("name", ["continuous", "discrete", "retrain", "network", "failed-config", "failed-stage",
                                  "failed-retrain", "failed-network"])
def test_each_log_validates_against_the_published_schema(logs, name):
    events = logs[name]
    assert validate_events(events) == len(events) > 0
    if name.startswith("failed"):
        assert events[-1]["kind"] == "status" and events[-1]["payload"]["state"] == "failed"
        assert events[-1]["payload"]["error"]
    else:
        assert events[-1]["payload"]["state"] == "succeeded"


def test_the_logs_together_use_every_status_state_and_the_kinds_a_run_writes(logs):
    events = [e for name in ("continuous", "discrete", "retrain", "failed-stage") for e in logs[name]]
    states = {e["payload"]["state"] for e in events if e["kind"] == "status"}
    # `resumed` is written by a restarted discrete search (tests/discrete cover the restart).
    assert states >= set(StatusState) - {StatusState.resumed}
    kinds = {e["kind"] for e in events}
    # A heartbeat needs 10 s of silence, a tiny run has none: its schema is checked below instead. `nasforge
    # sensitivity` writes the sensitivity event, not a search; tests/sensitivity validates its log.
    assert kinds >= set(EventKind) - {EventKind.heartbeat, EventKind.log, EventKind.sensitivity}
    assert set(EVENT_SCHEMA["properties"]["kind"]["enum"]) == set(EventKind)


def test_the_schema_refuses_what_the_enums_do_not_define(logs):
    good = logs["continuous"][:1]
    for bad in ({**good[0], "kind": "alphas"},
                {**good[0], "kind": "status", "payload": {"state": "finished"}},
                {**good[0], "kind": "status", "payload": {"state": "failed"}}):  # failed needs its error
        with pytest.raises(ValueError):
            validate_events([bad])


def test_a_retrain_run_retrains_the_given_genotype_and_never_searches(logs):
    events, rd = logs["retrain"], logs["dirs"]["retrain"]
    stages = [e["payload"].get("stage") for e in events if e["kind"] == "status" and e["payload"]["state"] == "running"]
    assert stages == ["retrain", "evaluate"]
    assert not rd.checkpoint.exists() and rd.metrics.exists() and rd.retrained.exists()
    assert json.loads(rd.genotype.read_text()) == json.loads(logs["dirs"]["continuous"].genotype.read_text())
    given = [e for e in events if e["kind"] == "genotype"]
    assert len(given) == 1 and given[0]["payload"]["parent_run_id"] == 1
    assert "run.genotype" in logs["failed-retrain"][-1]["payload"]["error"]


def test_a_hand_designed_baseline_trains_and_scores_its_network_and_never_searches(logs):
    from nas_core.inference.predictor import load_model

    events, rd = logs["network"], logs["dirs"]["network"]
    stages = [e["payload"].get("stage") for e in events if e["kind"] == "status" and e["payload"]["state"] == "running"]
    assert stages == ["retrain", "evaluate"]
    assert not rd.checkpoint.exists() and not rd.genotype.exists() and rd.metrics.exists()
    label = "resnext-unet c4 d1 bottleneck_width2 cardinality2"
    evaluation = [e["payload"] for e in events if e["kind"] == "evaluation" and e["payload"]["stage"] == "evaluate"]
    assert [e["label"] for e in evaluation] == [label] and evaluation[0]["curves"]
    assert {e["payload"]["label"] for e in events if e["kind"] == "metric"} == {label}
    # Its checkpoint names the network, so the run directory predicts on its own like a searched one.
    predictor = load_model(rd.root)
    assert predictor.card["genotype"] is None and predictor.card["network"]["label"] == label
    assert predictor.predict_tiles(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1, 2, 32, 32)
    error = logs["failed-network"][-1]["payload"]["error"]
    assert "baseline.networks.1.backbone.cardinality" in error, error
