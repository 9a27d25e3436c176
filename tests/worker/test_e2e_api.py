"""End to end with the real `nasforge search` on a tiny synthetic experiment: launched through the API, run by
the Celery worker on SLURM and locally, killed mid-search, requeued, resumed from its checkpoint, succeeded."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from deploy.local import Stack, free_port
from tests.worker.conftest import file_seqs, stored_seqs, wait_for

NASFORGE = str(Path(sys.executable).with_name("nasforge"))
_OPS = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]


def _tiny(name: str, launcher: str) -> dict:
    return {
        "name": name, "seed": 0,
        "space": {"channels": 4, "depth": 1, "cells": {t: {"ops": _OPS, "nodes": 2} for t in ("normal", "down", "up")}},
        "data": {"tile_size": 32, "num_tiles": 16, "batch_size": 4},
        "search": {"method": "darts", "epochs": 4, "pc_k": 2, "warmup_epochs": 0},
        "retrain": {"epochs": 1},
        "baseline": {"random": False},
        "launcher": {"kind": launcher, "max_restarts": 2},
    }


@pytest.fixture
def api(worker_home, tmp_path):
    """The API and one Celery worker (with beat) on the worker tests' database, running the real search."""
    if not Path(NASFORGE).exists():
        pytest.skip(f"{NASFORGE} not installed (pip install -e .)")

    def start(extra: dict | None = None):
        # One torch thread per run: the test machine has two cores and the API and worker run beside it.
        env = {**worker_home["env"], "NASFORGE_SEARCH_COMMAND": json.dumps([NASFORGE]), "OMP_NUM_THREADS": "1",
               **(extra or {})}
        port = free_port()
        stack.worker(env)
        stack.api(env, port)
        from backend.core.db import session_scope
        from backend.core.security import create_admin_token

        with session_scope() as s:
            token = create_admin_token(s, name=f"e2e-{port}")
        return httpx.Client(base_url=f"http://127.0.0.1:{port}/api", headers={"Authorization": f"Bearer {token}"},
                            timeout=30)

    stack = Stack(tmp_path / "stack")
    yield start
    stack.stop()


def _launch(client: httpx.Client, name: str, launcher: str) -> int:
    exp = client.post("/experiments", json=_tiny(name, launcher))
    assert exp.status_code == 201, exp.text
    run = client.post(f"/experiments/{exp.json()['id']}/runs", json={"baselines": False})
    assert run.status_code == 201, run.text
    return run.json()["run"]["id"]


def _wait(client: httpx.Client, run_id: int, statuses: set[str], timeout: float) -> dict:
    holder = {}

    def check():
        holder["run"] = client.get(f"/runs/{run_id}").json()
        return holder["run"]["status"] in statuses

    try:
        wait_for(check, timeout, every=0.5, what=f"run {run_id} to become {sorted(statuses)}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {holder.get('run')}") from None
    return holder["run"]


def _checkpointed(run_dir: str) -> bool:
    # The search checkpoints every epoch; the first metric event marks the first finished epoch. Polled every 50 ms
    # (two file reads): the tiny search's four epochs take about a second, and a kill that lands after the last of
    # them resumes past the search ("resumed: search, decode already done"), not "at epoch N" as the test asserts.
    return os.path.exists(os.path.join(run_dir, "checkpoints", "last.pt")) and any(
        '"kind":"metric"' in line for line in open(os.path.join(run_dir, "events.jsonl")))


def _assert_resumed_and_complete(client: httpx.Client, run: dict) -> None:
    assert run["status"] == "succeeded", run["status_reason"]
    assert run["attempt"] == 2
    seqs = file_seqs(run["run_dir"])
    assert seqs == list(range(1, len(seqs) + 1)) and stored_seqs(run["id"]) == seqs, "no event lost or doubled"
    api_events = client.get(f"/runs/{run['id']}/events", params={"limit": 1000}).json()
    assert [e["seq"] for e in api_events] == seqs
    messages = [e["payload"].get("message", "") for e in api_events if e["kind"] == "log"]
    assert any(m.startswith("resumed at epoch") and not m.startswith("resumed at epoch 0") for m in messages), messages
    assert api_events[-1]["kind"] == "status" and api_events[-1]["payload"]["state"] == "succeeded"
    for name in ("genotype.json", "metrics.json", "config.yaml"):
        assert os.path.exists(os.path.join(run["run_dir"], name)), name


@pytest.mark.slurm
@pytest.mark.slow
def test_api_to_sbatch_tiny_search_requeued_mid_search_resumes_and_succeeds(api, slurm_home):
    client = api({"NASFORGE_SLURM_CONF": slurm_home["env"]["NASFORGE_SLURM_CONF"]})
    run_id = _launch(client, "e2e-slurm", "slurm")
    run = _wait(client, run_id, {"running", "failed"}, 120)
    assert run["status"] == "running" and run["job_id"], run
    wait_for(lambda: _checkpointed(run["run_dir"]), 180, every=0.05, what="the first epoch's checkpoint")
    # One node cannot preempt: `scontrol requeue` does to the job what preemption does (see test_slurm_lifecycle).
    senv = slurm_home["slurm_env"]
    subprocess.run(["scontrol", "requeue", run["job_id"]], env=senv, check=True, timeout=30)
    _wait(client, run_id, {"preempted", "pending"}, 60)
    subprocess.run(["scontrol", "update", f"JobId={run['job_id']}", "StartTime=now"], env=senv, check=True, timeout=30)
    run = _wait(client, run_id, {"succeeded", "failed", "cancelled"}, 300)
    _assert_resumed_and_complete(client, run)


@pytest.mark.slow
def test_api_to_local_tiny_search_killed_mid_search_resumes_and_succeeds(api):
    client = api()
    run_id = _launch(client, "e2e-local", "local")
    run = _wait(client, run_id, {"running", "failed"}, 120)
    assert run["status"] == "running" and run["pid"], run
    wait_for(lambda: _checkpointed(run["run_dir"]), 180, every=0.05, what="the first epoch's checkpoint")
    os.killpg(run["pid"], signal.SIGKILL)  # the whole run dies at once, as with a lost machine
    run = _wait(client, run_id, {"succeeded", "failed", "cancelled"}, 300)
    _assert_resumed_and_complete(client, run)
