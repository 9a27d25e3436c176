"""Launch shapes that would start independent searches in one run directory are refused with 422 naming the
fields and the fix, whether the experiment asks for them or the launch body's resources do (one validator,
`ExperimentConfig._check`, behind both)."""
from __future__ import annotations

import pytest

from nas_core.config import ConfigError, parse_experiment

CONTINUOUS_ON_PLAIN_RANKS = {"search": {"method": "darts"}, "launcher": {"processes": 2}}
DISCRETE_UNDER_DDP = {"search": {"method": "random"}, "launcher": {"processes": 2}, "distributed": {"engine": "ddp"}}


def _message(r) -> str:
    body = r.json()
    return f"{body.get('message', '')} {body.get('detail', '')}"


def test_bad_shapes_in_the_experiment_are_422_with_the_fields_and_the_fix(client, tokens):
    r = client.post("/api/experiments", json={"name": "x", **CONTINUOUS_ON_PLAIN_RANKS}, headers=tokens.write)
    assert r.status_code == 422, r.text
    text = _message(r)
    assert "distributed.engine" in text and "launcher.processes" in text and "ddp or horovod" in text, text
    r = client.post("/api/experiments", json={"name": "x", **DISCRETE_UNDER_DDP}, headers=tokens.write)
    assert r.status_code == 422, r.text
    text = _message(r)
    assert "distributed.engine" in text and "MPI orchestrator" in text and "distributed.engine: none" in text, text


def test_bad_shapes_from_the_launch_resources_are_422_and_queue_nothing(client, tokens):
    darts = client.post("/api/experiments", json={"name": "d", "search": {"method": "darts"}}, headers=tokens.write)
    ddp_random = client.post("/api/experiments", json={"name": "r", "search": {"method": "random"},
                                                       "distributed": {"engine": "ddp"}}, headers=tokens.write)
    assert darts.status_code == ddp_random.status_code == 201, (darts.text, ddp_random.text)
    for exp in (darts.json()["id"], ddp_random.json()["id"]):
        r = client.post(f"/api/experiments/{exp}/runs", json={"resources": {"processes": 3}, "baselines": False},
                        headers=tokens.write)
        assert r.status_code == 422, r.text
        assert "distributed.engine" in _message(r) and "processes" in _message(r), _message(r)
        assert client.get("/api/runs", params={"experiment_id": exp}, headers=tokens.read).json()["total"] == 0
    # SLURM counts tasks: 2 nodes x 1 task is two ranks as well.
    r = client.post(f"/api/experiments/{darts.json()['id']}/runs",
                    json={"launcher": "slurm", "resources": {"slurm": {"nodes": 2}}, "baselines": False},
                    headers=tokens.write)
    assert r.status_code == 422 and "launcher.slurm.nodes x launcher.slurm.tasks_per_node" in _message(r), r.text


@pytest.mark.parametrize("cfg", [
    {"search": {"method": "darts"}, "launcher": {"processes": 2}, "distributed": {"engine": "ddp"}},
    {"search": {"method": "evolution"}, "launcher": {"processes": 3}},
    {"search": {"method": "reinforce"}, "launcher": {"kind": "slurm", "slurm": {"tasks_per_node": 3}}},
    {"search": {"method": "gaea"}, "launcher": {"processes": 1}},
])
def test_good_shapes_pass(cfg):
    parse_experiment({"name": "ok", **cfg})


def test_the_yaml_loader_raises_the_same_words():
    with pytest.raises(ConfigError, match=r"distributed\.engine: darts on 2 processes \(launcher\.processes\)"):
        parse_experiment({"name": "x", **CONTINUOUS_ON_PLAIN_RANKS}, where="exp.yaml")
