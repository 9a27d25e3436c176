"""Where to search first on a finished run: measure its blocks (the worker runs `nasforge sensitivity --run-dir`)
and read the ranking (RUN/sensitivity.json), for the run page's block diagram."""
from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from backend import crud, sensitivity
from backend.api.deps import BridgeDep, Id, Reader, SessionDep, SettingsDep, Writer, check_owner
from backend.sensitivity import BUSY, SensitivityState

log = logging.getLogger(__name__)
router = APIRouter(tags=["runs"])


class SensitivityStatus(BaseModel):
    run_id: int
    state: SensitivityState = Field(description="queued or running: being measured; done: `result` is the "
                                    "ranking; failed: `reason` says why (`result` is an earlier ranking, if any).")
    reason: str = ""
    result: dict[str, Any] | None = Field(None, description="RUN/sensitivity.json: the network (network_config, "
                                          "in_channels, num_classes, checkpoint), `first`, `order` and per block "
                                          "name, role, channels, cell_nodes, gain, drop, taylor_share, score, rank.")


@router.post("/runs/{run_id}/sensitivity", status_code=202, response_model=SensitivityStatus,
             responses={202: {"description": "Queued: GET the same path for its state and result."}})
def start_sensitivity(run_id: Id, session: SessionDep, who: Writer, bridge: BridgeDep, settings: SettingsDep
                      ) -> SensitivityStatus:
    """Rank the blocks of a succeeded hand-designed baseline run by the room they leave (docs/search.md, "Where
    to search first"); 422 for a run without such a network, 409 while it is not succeeded or is being measured."""
    run = crud.get_run(session, run_id)
    check_owner(who, crud.get_experiment(session, run.experiment_id).owner_id)
    sensitivity.check_applies(run, settings)
    if not sensitivity.claim(settings, run.id):
        raise crud.Conflict(f"run {run.id} is being measured already; GET /api/runs/{run.id}/sensitivity for its state")
    try:
        bridge.sensitivity(run.id)
    except Exception as exc:
        log.warning("could not hand the sensitivity of run %s to the worker: %s", run.id, exc)
        sensitivity.write_state(settings, run.id, SensitivityState.failed,
                                f"worker broker unreachable: {type(exc).__name__}")
        raise HTTPException(503, "the worker broker (Redis) cannot be reached; try again later") from None
    return SensitivityStatus(run_id=run.id, state=SensitivityState.queued, result=sensitivity.result_of(run, settings))


@router.get("/runs/{run_id}/sensitivity", response_model=SensitivityStatus)
def read_sensitivity(run_id: Id, session: SessionDep, _: Reader, settings: SettingsDep) -> SensitivityStatus:
    """The run's ranking, or its state while it is measured; 404 with the reason when there is none."""
    run = crud.get_run(session, run_id)
    state = sensitivity.read_state(settings, run.id) or {}
    result = sensitivity.result_of(run, settings)
    if state.get("state") in (*BUSY, SensitivityState.failed):
        return SensitivityStatus(run_id=run.id, state=state["state"], reason=state.get("reason", ""), result=result)
    if result is not None:
        return SensitivityStatus(run_id=run.id, state=SensitivityState.done, result=result)
    if sensitivity.network_of(run) is None:
        raise crud.NotFound(f"run {run.id} has no sensitivity ranking: it is a {run.kind} run without a hand-designed "
                            "network, and 'where to search first' measures a baseline run of one")
    raise crud.NotFound(f"run {run.id} has no sensitivity ranking yet: POST /api/runs/{run.id}/sensitivity (the "
                        "run page's 'Where to search first') measures it once the run has succeeded")
