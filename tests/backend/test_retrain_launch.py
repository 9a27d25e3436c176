"""Retrain runs through the API: a parent's genotype or one given (checked by Genotype.from_dict and against the
experiment's space, 422 naming `genotype`), epochs and seed overrides, the genotype stored on the run, retrains listed beside their parent; and
the shared names the UI fetches instead of restating them."""
from __future__ import annotations

from backend.models import RETRIABLE_STATUSES, RUN_STATUSES, TERMINAL_STATUSES
from nas_core.config import DISCRETE_METHODS, METHODS
from nas_core.events import EVENT_KINDS, StatusState
from nas_core.rundir import RUN_KINDS

GENOTYPE = {"cells": {t: {"nodes": [[["sep_conv_3x3", 0], ["skip_connect", 1]]], "concat": [2]}
                      for t in ("normal", "down", "up")}}


def _experiment(client, headers, name: str = "r") -> int:
    r = client.post("/api/experiments", json={"name": name, "seed": 3, "retrain": {"epochs": 7},
                                              "baseline": {"random": False}}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _launch(client, headers, exp: int, **body):
    return client.post(f"/api/experiments/{exp}/runs", json=body, headers=headers)


def test_retrain_of_a_parent_with_epoch_and_seed_overrides(client, tokens):
    exp = _experiment(client, tokens.write)
    parent = _launch(client, tokens.write, exp, method="gaea").json()["run"]
    r = _launch(client, tokens.write, exp, kind="retrain", parent_run_id=parent["id"], retrain_epochs=2, seed=11)
    assert r.status_code == 201, r.text
    run = r.json()["run"]
    assert (run["kind"], run["parent_run_id"], run["method"], r.json()["baselines"]) == ("retrain", parent["id"], "gaea", [])
    detail = client.get(f"/api/runs/{run['id']}", headers=tokens.read).json()
    assert detail["config"]["retrain"]["epochs"] == 2 and detail["config"]["seed"] == 11
    assert detail["genotype"] is None  # the parent's genotype.json is read by the worker at submit
    # The parent lists its retrains; the runs list finds them by parent.
    assert client.get(f"/api/runs/{parent['id']}", headers=tokens.read).json()["retrains"] == [run["id"]]
    listed = client.get("/api/runs", params={"parent_run_id": parent["id"]}, headers=tokens.read).json()["items"]
    assert [x["id"] for x in listed] == [run["id"]]


def test_retrain_of_a_given_genotype_stores_it(client, tokens):
    exp = _experiment(client, tokens.write)
    r = _launch(client, tokens.write, exp, kind="retrain", genotype=GENOTYPE)
    assert r.status_code == 201, r.text
    detail = client.get(f"/api/runs/{r.json()['run']['id']}", headers=tokens.read).json()
    assert detail["genotype"] == GENOTYPE and detail["config"]["retrain"]["epochs"] == 7 and detail["config"]["seed"] == 3


def test_retrain_launch_errors_name_the_field(client, tokens):
    exp = _experiment(client, tokens.write)
    bad = _launch(client, tokens.write, exp, kind="retrain", genotype={"cells": {"normal": {"concat": [2]}}})
    assert bad.status_code == 422
    assert any(e["loc"][-1] == "genotype" and "nodes" in e["msg"] for e in bad.json()["detail"]), bad.text
    # A well-formed genotype that the experiment's space cannot build: refused now, not as a failed run later.
    half = {"cells": {"normal": GENOTYPE["cells"]["normal"]}}
    r = _launch(client, tokens.write, exp, kind="retrain", genotype=half)
    assert r.status_code == 422 and "genotype" in r.text and "down, up" in r.text, r.text
    bogus = {"cells": {**GENOTYPE["cells"], "up": {"nodes": [[["bogus_op", 0]]], "concat": [2]}}}
    r = _launch(client, tokens.write, exp, kind="retrain", genotype=bogus)
    assert r.status_code == 422 and "cells.up" in r.text and "bogus_op" in r.text, r.text
    none = _launch(client, tokens.write, exp, kind="retrain")
    assert none.status_code == 422 and "parent_run_id" in none.text and "genotype" in none.text
    assert _launch(client, tokens.write, exp, genotype=GENOTYPE).status_code == 422  # only a retrain takes one
    assert _launch(client, tokens.write, exp, kind="retrain", genotype=GENOTYPE, retrain_epochs=0).status_code == 422
    other = _launch(client, tokens.write, _experiment(client, tokens.write, "other")).json()["run"]
    foreign = _launch(client, tokens.write, exp, kind="retrain", parent_run_id=other["id"])
    assert foreign.status_code == 422 and "another experiment" in foreign.text
    assert _launch(client, tokens.write, exp, kind="baseline").status_code == 422  # made beside a search, never alone


def test_the_shared_names_come_from_their_definitions(client):
    r = client.get("/api/schema/names")
    assert r.status_code == 200
    n = r.json()
    assert n["methods"] == list(METHODS) and n["discrete_methods"] == list(DISCRETE_METHODS)
    assert n["event_kinds"] == [str(k) for k in EVENT_KINDS] and n["status_states"] == [str(s) for s in StatusState]
    assert n["run_kinds"] == list(RUN_KINDS) and n["run_statuses"] == list(RUN_STATUSES)
    assert set(n["terminal_statuses"]) == TERMINAL_STATUSES and set(n["retriable_statuses"]) == RETRIABLE_STATUSES
    assert n["stale_after_s"] > n["heartbeat_s"] > 0
