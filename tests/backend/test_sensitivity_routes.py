"""'Where to search first' routes: only a succeeded run of a hand-designed network is measured (422 for a run of
cells, 409 before it succeeded and while it is measured), the request is queued once, and GET gives the state,
then the ranking, or 404 with the reason. The measuring itself is the worker's (tests/browser/test_sensitivity_ui)."""
from __future__ import annotations

import json

from backend import crud
from nas_core.config import ExperimentConfig
from nas_core.rundir import RunDir

NETWORK = {"name": "plain-unet", "channels": 4, "depth": 2, "backbone": {}}


def _run(session, tokens, settings, network=None, status="succeeded"):
    exp = crud.create_experiment(session, ExperimentConfig(name="s", baseline={"random": False}), tokens.alice_id)
    run, _ = crud.launch(session, exp, baselines=False, runs_dir=settings.runs_dir)
    run.network = network
    session.add(run)
    session.commit()
    for step in ("submitted", "running", "succeeded")[:("submitted", "running", "succeeded").index(status) + 1]:
        crud.set_run_status(session, run.id, step, status_reason="test")
    rd = RunDir(run.run_dir)
    rd.retrained.parent.mkdir(parents=True, exist_ok=True)
    rd.retrained.write_bytes(b"weights")  # read by the command, not by the API
    return run.id, rd


def test_what_is_measured_and_the_states(client, session, tokens, settings):
    cells, _ = _run(session, tokens, settings)
    r = client.post(f"/api/runs/{cells}/sensitivity", headers=tokens.write)
    assert r.status_code == 422 and "without a hand-designed network" in r.json()["detail"], r.text
    r = client.get(f"/api/runs/{cells}/sensitivity", headers=tokens.read)
    assert r.status_code == 404 and "without a hand-designed network" in r.json()["detail"]

    busy, _ = _run(session, tokens, settings, NETWORK, status="running")
    r = client.post(f"/api/runs/{busy}/sensitivity", headers=tokens.write)
    assert r.status_code == 409 and "wait until it has succeeded" in r.json()["detail"]

    run, rd = _run(session, tokens, settings, NETWORK)
    r = client.get(f"/api/runs/{run}/sensitivity", headers=tokens.read)
    assert r.status_code == 404 and f"POST /api/runs/{run}/sensitivity" in r.json()["detail"]
    assert client.post(f"/api/runs/{run}/sensitivity", headers=tokens.read).status_code == 403
    assert client.post(f"/api/runs/{run}/sensitivity", headers=tokens.other_writer).status_code == 403
    r = client.post(f"/api/runs/{run}/sensitivity", headers=tokens.write)
    assert r.status_code == 202 and r.json()["state"] == "queued", r.text
    again = client.post(f"/api/runs/{run}/sensitivity", headers=tokens.write)
    assert again.status_code == 409 and "being measured already" in again.json()["detail"]
    assert client.get(f"/api/runs/{run}/sensitivity", headers=tokens.read).json()["state"] == "queued"

    # The worker's last word: done, and the file is the result.
    from backend.sensitivity import SensitivityState, write_state

    rd.sensitivity.write_text(json.dumps({"first": "down.1", "blocks": []}))
    write_state(settings, run, SensitivityState.done)
    r = client.get(f"/api/runs/{run}/sensitivity", headers=tokens.read)
    assert r.status_code == 200 and r.json()["state"] == "done" and r.json()["result"]["first"] == "down.1"
