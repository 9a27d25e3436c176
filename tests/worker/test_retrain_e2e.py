"""Retrain runs through the real worker (local launcher, the real `nasforge search` on a tiny synthetic experiment):
a retrain of a finished search retrains the parent's genotype in its own run directory and never enters the
search stage; a retrain of a parent without a genotype fails saying so."""
from __future__ import annotations

import json

import pytest

from nas_core.events import EventKind, StatusState, read_events
from nas_core.rundir import RunDir
from tests.worker.conftest import file_seqs, stored_seqs
from tests.worker.test_e2e_api import _tiny, _wait, api  # noqa: F401  (api: the API + worker fixture)


def _events(run_dir: str) -> list[dict]:
    return [ev for _, ev in read_events(RunDir(run_dir).events)]


@pytest.mark.slow
def test_retrain_of_a_finished_search_retrains_its_genotype_and_never_searches(api):  # noqa: F811
    client = api()
    cfg = _tiny("retrain-e2e", "local")
    cfg["search"]["epochs"] = 2
    exp = client.post("/experiments", json=cfg)
    assert exp.status_code == 201, exp.text
    exp_id = exp.json()["id"]
    parent = client.post(f"/experiments/{exp_id}/runs", json={"baselines": False}).json()["run"]
    parent = _wait(client, parent["id"], {"succeeded", "failed", "cancelled"}, 300)
    assert parent["status"] == "succeeded", parent["status_reason"]
    parent_genotype = json.loads(RunDir(parent["run_dir"]).genotype.read_text())

    r = client.post(f"/experiments/{exp_id}/runs", json={"kind": "retrain", "parent_run_id": parent["id"],
                                                         "retrain_epochs": 1, "seed": 4})
    assert r.status_code == 201, r.text
    child = _wait(client, r.json()["run"]["id"], {"succeeded", "failed", "cancelled"}, 300)
    assert child["status"] == "succeeded", child["status_reason"]
    assert child["run_dir"] != parent["run_dir"] and child["parent_run_id"] == parent["id"]

    # The parent's cell, retrained: its genotype.json and the stored genotype equal the parent's.
    rd = RunDir(child["run_dir"])
    assert json.loads(rd.genotype.read_text()) == parent_genotype
    assert child["genotype"] == parent_genotype
    overrides = rd.read_overrides()
    assert (overrides.kind, overrides.parent_run_id, overrides.genotype) == ("retrain", parent["id"], parent_genotype)
    assert not rd.checkpoint.exists()  # no supernet was trained

    events = _events(child["run_dir"])
    stages = [e["payload"].get("stage") for e in events if e["kind"] == EventKind.status
              and e["payload"].get("state") == StatusState.running]
    assert "search" not in stages and "decode" not in stages and {"retrain", "evaluate"} <= set(stages), stages
    assert not any(e["kind"] == EventKind.alpha for e in events)
    assert any(e["kind"] == EventKind.evaluation and e["payload"].get("stage") == "evaluate" for e in events)
    assert events[-1]["kind"] == EventKind.status and events[-1]["payload"]["state"] == StatusState.succeeded
    seqs = file_seqs(child["run_dir"])
    assert stored_seqs(child["id"]) == seqs == list(range(1, len(seqs) + 1))

    # It appears beside its parent, and its headline is its own evaluate stage's test IoU.
    assert client.get(f"/runs/{parent['id']}").json()["retrains"] == [child["id"]]
    assert child["headline"]["source"] == "evaluate" and child["headline"]["value"] is not None


@pytest.mark.slow
def test_retrain_of_a_parent_without_a_genotype_fails_saying_so(api):  # noqa: F811
    from backend import crud
    from backend.core.db import session_scope

    client = api()
    exp_id = client.post("/experiments", json=_tiny("retrain-no-genotype", "local")).json()["id"]
    with session_scope() as s:  # a parent that never ran (cancelled while queued): no genotype.json
        parent, _ = crud.launch(s, crud.get_experiment(s, exp_id), baselines=False)
        crud.cancel_run(s, parent)
        parent_id = parent.id
    r = client.post(f"/experiments/{exp_id}/runs", json={"kind": "retrain", "parent_run_id": parent_id})
    assert r.status_code == 201, r.text
    child = _wait(client, r.json()["run"]["id"], {"succeeded", "failed", "cancelled"}, 120)
    assert child["status"] == "failed"
    assert f"parent run {parent_id} has no genotype yet" in child["status_reason"], child["status_reason"]
