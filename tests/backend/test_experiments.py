"""Experiments through the API on SQLite and PostgreSQL: create, validate, list, update, clone, delete."""
from __future__ import annotations

from nas_core.config import ExperimentConfig


def _create(client, headers, **cfg):
    r = client.post("/api/experiments", json={"name": "heli", **cfg}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_fills_defaults_and_reads_back(client, tokens):
    exp = _create(client, tokens.write, description="first", search={"method": "pcdarts", "epochs": 3})
    assert exp["name"] == "heli" and exp["description"] == "first"
    assert exp["owner_id"] == tokens.alice_id
    # The stored config is the full schema object: defaults filled, validating again unchanged.
    cfg = ExperimentConfig.model_validate(exp["config"])
    assert cfg.search.method == "pcdarts" and cfg.search.epochs == 3
    assert cfg.model_dump(mode="json") == exp["config"]
    got = client.get(f"/api/experiments/{exp['id']}", headers=tokens.read).json()
    assert got["config"] == exp["config"] and got["run_counts"] == {}


def test_invalid_config_names_the_field_path(client, tokens):
    r = client.post("/api/experiments", json={"name": "x", "search": {"epochs": 0}}, headers=tokens.write)
    assert r.status_code == 422
    assert "body.search.epochs" in r.json()["message"]
    r = client.post("/api/experiments", json={"name": "x", "space": {"bogus": 1}}, headers=tokens.write)
    assert r.status_code == 422 and "body.space.bogus" in r.json()["message"]
    # Infinity parses as JSON in Python but no database column may hold it: refused, naming the field.
    r = client.post("/api/experiments", content=b'{"name": "x", "search": {"w_lr": Infinity}}',
                    headers={**tokens.write, "Content-Type": "application/json"})
    assert r.status_code == 422 and "body.search.w_lr" in r.json()["detail"]
    r = client.post("/api/experiments", json={"name": "x\u0000y"}, headers=tokens.write)
    assert r.status_code == 422 and "body.name" in r.json()["detail"]


def test_list_filters_and_paginates(client, tokens):
    ids = [_create(client, tokens.write, name=f"exp {i}", description="aircraft" if i % 2 else "membrane")["id"] for i in range(5)]
    page = client.get("/api/experiments", params={"limit": 2, "offset": 1}, headers=tokens.read).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [e["id"] for e in page["items"]] == sorted(ids, reverse=True)[1:3]
    found = client.get("/api/experiments", params={"q": "aircraft"}, headers=tokens.read).json()
    assert found["total"] == 2 and {e["name"] for e in found["items"]} == {"exp 1", "exp 3"}
    mine = client.get("/api/experiments", params={"owner_id": tokens.bob_id}, headers=tokens.read).json()
    assert mine["total"] == 0


def test_update_keeps_config_and_columns_in_step(client, tokens):
    exp = _create(client, tokens.write)
    r = client.patch(f"/api/experiments/{exp['id']}", json={"name": "renamed", "description": "d"}, headers=tokens.write)
    assert r.status_code == 200
    assert r.json()["name"] == "renamed" and r.json()["config"]["name"] == "renamed" and r.json()["config"]["description"] == "d"
    r = client.put(f"/api/experiments/{exp['id']}", json={"name": "again", "seed": 7}, headers=tokens.write)
    assert r.status_code == 200 and r.json()["config"]["seed"] == 7 and r.json()["name"] == "again"
    assert r.json()["updated_at"] >= exp["updated_at"]
    assert client.patch(f"/api/experiments/{exp['id']}", json={"owner_id": 5}, headers=tokens.write).status_code == 422


def test_clone_copies_config_under_new_owner(client, tokens):
    exp = _create(client, tokens.write, seed=3)
    r = client.post(f"/api/experiments/{exp['id']}/clone", headers=tokens.other_writer)
    assert r.status_code == 201
    clone = r.json()
    assert clone["id"] != exp["id"] and clone["cloned_from"] == exp["id"] and clone["owner_id"] == tokens.bob_id
    assert clone["name"] == "heli (copy)" and clone["config"]["seed"] == 3
    named = client.post(f"/api/experiments/{exp['id']}/clone", json={"name": "v2"}, headers=tokens.write).json()
    assert named["name"] == "v2" and named["config"]["name"] == "v2"


def test_delete_refused_while_runs_are_active(client, tokens):
    exp = _create(client, tokens.write, baseline={"random": False})
    run = client.post(f"/api/experiments/{exp['id']}/runs", headers=tokens.write).json()["run"]
    r = client.delete(f"/api/experiments/{exp['id']}", headers=tokens.write)
    assert r.status_code == 409 and "active" in r.json()["detail"]
    assert client.post(f"/api/runs/{run['id']}/cancel", headers=tokens.write).status_code == 200
    assert client.delete(f"/api/experiments/{exp['id']}", headers=tokens.write).status_code == 204
    assert client.get(f"/api/experiments/{exp['id']}", headers=tokens.read).status_code == 404
    assert client.get(f"/api/runs/{run['id']}", headers=tokens.read).status_code == 404


def test_missing_things_are_404(client, tokens):
    assert client.get("/api/experiments/999", headers=tokens.read).status_code == 404
    assert client.post("/api/experiments/999/clone", headers=tokens.write).status_code == 404
    assert client.get("/api/runs/999", headers=tokens.read).status_code == 404
    # Beyond int4 (PostgreSQL ids): refused as invalid input, never a database error.
    assert client.get(f"/api/experiments/{2**40}", headers=tokens.read).status_code == 422
