"""Run lifecycle on SQLite and PostgreSQL: launch hands runs to Celery (messages read back from the real Redis),
random baselines, cancel / retry, the allowed status transitions and their 409s."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from backend import crud
from backend.core.config import Settings
from backend.main import create_app


def _tasks(redis_client, queue: str = "celery") -> list[tuple[str, list]]:
    """(task name, args) of each message Celery's Redis transport left in the queue, oldest first."""
    out = []
    for raw in reversed(redis_client.lrange(queue, 0, -1)):
        msg = json.loads(raw)
        args = json.loads(base64.b64decode(msg["body"]))[0]
        out.append((msg["headers"]["task"], args))
    return out


def _experiment(client, headers, **cfg) -> int:
    r = client.post("/api/experiments", json={"name": "e", **cfg}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


NETWORKS = [{"name": "resnext-unet", "channels": 8, "backbone": {"cardinality": 2}}, {"name": "plain-unet", "depth": 2}]


def test_launch_continuous_search_adds_linked_random_and_hand_designed_baselines(client, session, tokens, redis_client):
    from worker.baseline import decide
    from worker.control import overrides_for

    exp = _experiment(client, tokens.write, seed=10, search={"method": "darts"}, launcher={"processes": 2},
                      distributed={"engine": "ddp"}, baseline={"random": True, "seeds": 2, "networks": NETWORKS})
    r = client.post(f"/api/experiments/{exp}/runs", json={}, headers=tokens.write)
    assert r.status_code == 201, r.text
    run, baselines = r.json()["run"], r.json()["baselines"]
    assert run["kind"] == "search" and run["method"] == "darts" and run["status"] == "queued" and run["attempt"] == 1
    assert run["run_dir"].endswith(f"/runs/{run['id']}") and run["network"] is None
    random, nets = baselines[:2], baselines[2:]
    assert [(b["kind"], b["method"], b["baseline_of"]) for b in random] == [("baseline", "random", run["id"])] * 2
    detail = client.get(f"/api/runs/{baselines[1]['id']}", headers=tokens.read).json()
    assert detail["config"]["search"]["method"] == "random" and detail["config"]["seed"] == 11
    # One hand-designed baseline per network, named by it, with the search's own seed, in one process.
    assert [(b["kind"], b["method"], b["baseline_of"], b["network"]["label"]) for b in nets] == [
        ("baseline", "resnext-unet", run["id"], "resnext-unet c8 d3 cardinality2"),
        ("baseline", "plain-unet", run["id"], "plain-unet c16 d2")]
    detail = client.get(f"/api/runs/{nets[0]['id']}", headers=tokens.read).json()
    assert detail["config"]["seed"] == 10 and detail["config"]["distributed"]["engine"] == "none"
    assert detail["resources"]["processes"] == 1
    assert client.get(f"/api/runs/{run['id']}", headers=tokens.read).json()["baselines"] == [b["id"] for b in baselines]
    assert _tasks(redis_client) == [("nasforge.launch_run", [i]) for i in (run["id"], *[b["id"] for b in baselines])]
    # The worker starts a hand-designed baseline at once (no compute of the search to wait for) with its network in
    # config.yaml's run: overrides; a random one waits for its search.
    row = crud.get_run(session, nets[0]["id"])
    assert decide(session, row) is None
    assert overrides_for(session, row).network.label == "resnext-unet c8 d3 cardinality2"
    assert decide(session, crud.get_run(session, random[0]["id"])).action == "wait"
    # The runs table counts only the random ones as the search's baselines.
    listed = client.get("/api/runs", params={"experiment_id": exp}, headers=tokens.read).json()["items"]
    assert next(x for x in listed if x["id"] == run["id"])["baseline_runs"] == 2
    assert {x["network"]["label"] for x in listed if x["network"]} == {"resnext-unet c8 d3 cardinality2", "plain-unet c16 d2"}


def test_a_bad_network_names_its_field(client, tokens):
    r = client.post("/api/experiments", json={"name": "e", "baseline": {"networks": [
        NETWORKS[0], {"name": "plain-unet", "backbone": {"cardinality": 2}}]}}, headers=tokens.write)
    assert r.status_code == 422 and "baseline.networks.1" in r.text and "backbone.cardinality" in r.text, r.text


def test_discrete_method_and_retrain_get_no_baselines(client, tokens, redis_client):
    exp = _experiment(client, tokens.write, search={"method": "darts"})
    search = client.post(f"/api/experiments/{exp}/runs", json={"method": "evolution"}, headers=tokens.write).json()
    assert search["run"]["method"] == "evolution" and search["baselines"] == []
    retrain = client.post(f"/api/experiments/{exp}/runs", json={"kind": "retrain", "parent_run_id": search["run"]["id"]},
                          headers=tokens.write).json()
    assert retrain["run"]["kind"] == "retrain" and retrain["run"]["parent_run_id"] == search["run"]["id"]
    assert retrain["baselines"] == []
    assert len(_tasks(redis_client)) == 2


def test_cancel_retry_and_impossible_transitions(client, tokens, redis_client):
    exp = _experiment(client, tokens.write, baseline={"random": False})
    run_id = client.post(f"/api/experiments/{exp}/runs", headers=tokens.write).json()["run"]["id"]
    r = client.post(f"/api/runs/{run_id}/cancel", headers=tokens.write)
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["finished_at"]
    assert ("nasforge.cancel_run", [run_id]) in _tasks(redis_client)
    assert client.post(f"/api/runs/{run_id}/cancel", headers=tokens.write).status_code == 409
    r = client.post(f"/api/runs/{run_id}/retry", headers=tokens.write)
    assert r.status_code == 200
    assert r.json()["status"] == "queued" and r.json()["attempt"] == 2 and r.json()["finished_at"] is None
    assert client.post(f"/api/runs/{run_id}/retry", headers=tokens.write).status_code == 409
    assert _tasks(redis_client).count(("nasforge.launch_run", [run_id])) == 2


def test_set_run_status_enforces_transitions(client, session, tokens):
    exp = crud.get_experiment(session, _experiment(client, tokens.write))
    run, _ = crud.launch(session, exp, baselines=False)
    run = crud.set_run_status(session, run.id, "submitted", job_id="4242")
    run = crud.set_run_status(session, run.id, "pending", status_reason="(Resources)")
    assert run.status_reason == "(Resources)" and run.started_at is None
    run = crud.set_run_status(session, run.id, "running", pid=123)
    assert run.started_at is not None and run.pid == 123 and run.job_id == "4242"
    run = crud.set_run_status(session, run.id, "preempted")
    run = crud.set_run_status(session, run.id, "queued", attempt=2)
    run = crud.set_run_status(session, run.id, "running")
    run = crud.set_run_status(session, run.id, "succeeded", progress=1.0)
    assert run.finished_at is not None and run.finished_at >= run.started_at
    with pytest.raises(crud.Conflict, match="succeeded; it cannot become running"):
        crud.set_run_status(session, run.id, "running")
    with pytest.raises(ValueError, match="status"):
        crud.set_run_status(session, run.id, "exploded")
    with pytest.raises(ValueError, match="unknown field"):
        crud.set_run_status(session, run.id, "succeeded", colour="red")
    with pytest.raises(crud.NotFound):
        crud.set_run_status(session, 10**6, "running")
    # Through the API: cancelling a finished run is a conflict, and the run is left as it was.
    r = client.post(f"/api/runs/{run.id}/cancel", headers=tokens.write)
    assert r.status_code == 409 and "succeeded" in r.json()["detail"]
    assert client.get(f"/api/runs/{run.id}", headers=tokens.read).json()["status"] == "succeeded"


def test_list_runs_filters(client, session, tokens):
    exp = _experiment(client, tokens.write, baseline={"random": True, "seeds": 3})
    run = client.post(f"/api/experiments/{exp}/runs", headers=tokens.write).json()["run"]
    crud.set_run_status(session, run["id"], "running")

    def ids(**params):
        return sorted(r["id"] for r in client.get("/api/runs", params=params, headers=tokens.read).json()["items"])

    assert len(ids(experiment_id=exp)) == 4
    assert ids(status="running") == [run["id"]]
    assert len(ids(kind="baseline", baseline_of=run["id"])) == 3
    assert ids(method="gaea") == []
    page = client.get("/api/runs", params={"limit": 1}, headers=tokens.read).json()
    assert page["total"] == 4 and len(page["items"]) == 1
    assert client.get("/api/runs", params={"status": "exploded"}, headers=tokens.read).status_code == 422


def test_unreachable_broker_fails_the_run_with_503(tmp_path, db_url, tokens):
    # A Redis URL on a port nothing listens on: the handover fails fast and says why.
    from deploy.local import free_port
    from fastapi.testclient import TestClient

    settings = Settings(data_dir=tmp_path / "v2", database_url=db_url, redis_url=f"redis://127.0.0.1:{free_port()}/0",
                        frontend_dir=tmp_path / "none")
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        exp = c.post("/api/experiments", json={"name": "e", "baseline": {"random": False}}, headers=tokens.write).json()
        r = c.post(f"/api/experiments/{exp['id']}/runs", headers=tokens.write)
        assert r.status_code == 503 and "broker" in r.json()["detail"]
        runs = c.get("/api/runs", headers=tokens.read).json()["items"]
        assert [(x["status"], x["status_reason"].startswith("worker broker unreachable")) for x in runs] == [("failed", True)]
        h = c.get("/api/health")
        assert h.status_code == 503 and h.json()["redis"]["ok"] is False and h.json()["database"]["ok"] is True


def test_artifacts_listed_and_served_only_from_the_run_directory(client, session, tokens, settings, tmp_path):
    exp = crud.get_experiment(session, _experiment(client, tokens.write))
    run, _ = crud.launch(session, exp, baselines=False, runs_dir=settings.runs_dir)
    root = Path(run.run_dir)
    (root / "samples").mkdir(parents=True)
    (root / "genotype.json").write_text('{"cells": {}}')
    (root / "samples" / "tile0.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "secret.txt").write_text("not yours")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    listed = client.get(f"/api/runs/{run.id}/artifacts", headers=tokens.read).json()
    assert [(a["path"], a["kind"]) for a in listed] == [("genotype.json", "genotype"), ("samples/tile0.png", "prediction")]
    r = client.get(f"/api/runs/{run.id}/artifacts/samples/tile0.png", headers=tokens.read)
    assert r.status_code == 200 and r.content == b"\x89PNG fake"
    # Encoded dots reach the server as `..` (a client would otherwise fold them away before sending).
    for bad in ("escape.txt", "%2E%2E/%2E%2E/secret.txt", "samples/%2E%2E/%2E%2E/%2E%2E/secret.txt", "nope.json"):
        r = client.get(f"/api/runs/{run.id}/artifacts/{bad}", headers=tokens.read)
        assert r.status_code == 404 and "not yours" not in r.text, bad
    assert client.get(f"/api/runs/{run.id}/artifacts/genotype.json").status_code == 401
