"""Runs: launch (handed to the worker by Celery task name), list, read, cancel, retry, ingest tokens, artifacts."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from backend import crud, listing
from backend.api.deps import BridgeDep, Id, Reader, SessionDep, SettingsDep, Writer, check_owner
from backend.core.security import create_ingest_token
from backend.headline import headline
from backend.listing import RUN_COLUMNS, RUN_DERIVED, sort_pattern
from backend.models import (Artifact, LaunchResult, Run, RunDetail, RunLaunch, RunPublic, RunStatus, TokenSecret,
                            experiment_config_from)
from backend.summary import RunRows
from nas_core.config import METHODS
from nas_core.events import pattern
from nas_core.rundir import RUN_KINDS

log = logging.getLogger(__name__)
router = APIRouter(tags=["runs"])
_ARTIFACT_KINDS = {".json": "genotype", ".pt": "checkpoint", ".png": "prediction", ".jpg": "prediction", ".tif": "prediction",
                   ".tiff": "prediction", ".jsonl": "events", ".log": "log", ".yaml": "config", ".sbatch": "job"}


def _detail(session, run: Run) -> RunDetail:
    baselines = [r.id for r in crud.list_runs(session, baseline_of=run.id, limit=500)[0]]
    retrains = [r.id for r in crud.list_runs(session, parent_run_id=run.id, limit=500)[0]]
    return RunDetail.model_validate(run, update={"baselines": sorted(baselines), "retrains": sorted(retrains),
                                                 "headline": headline(session, run)})


def _public(session, run: Run) -> RunPublic:
    return RunPublic.model_validate(run, update={"headline": headline(session, run)})


def _hand_over(session, bridge, runs: list[Run]) -> None:
    """Send each run to the worker; a broker that cannot be reached fails the run with the reason, then 503."""
    for run in runs:
        try:
            bridge.launch(run.id)
        except Exception as exc:
            log.warning("could not hand run %s to the worker: %s", run.id, exc)
            for r in runs:
                if session.get(Run, r.id).status == RunStatus.queued:
                    crud.set_run_status(session, r.id, RunStatus.failed, status_reason=f"worker broker unreachable: {type(exc).__name__}")
            raise HTTPException(503, "the worker broker (Redis) cannot be reached; the run was marked failed, retry it later") from None


@router.post("/experiments/{experiment_id}/runs", status_code=201, response_model=LaunchResult)
def launch_run(experiment_id: Id, session: SessionDep, who: Writer, bridge: BridgeDep, settings: SettingsDep,
               body: RunLaunch | None = None) -> LaunchResult:
    """Queue a run of the experiment; a continuous search whose config asks `baseline.random` also gets random baselines."""
    body = body or RunLaunch()
    exp = crud.get_experiment(session, experiment_id)
    check_owner(who, exp.owner_id)
    if body.resources:
        crud.check_json_safe(body.resources, "resources")
    # Checked again at launch: the experiment may predate the data roots, or the roots may have narrowed since.
    crud.with_confined_data(experiment_config_from(exp), settings.data_roots)
    args = dict(kind=body.kind, method=body.method, launcher=body.launcher, resources=body.resources,
                parent_run_id=body.parent_run_id, baselines=body.baselines, genotype=body.genotype,
                retrain_epochs=body.retrain_epochs, seed=body.seed, runs_dir=settings.runs_dir)
    # A search of an experiment with `repeats` is a study over seeds: one search and one baseline per seed.
    launched = crud.launch_repeats(session, exp, **args) if body.kind == "search" else [crud.launch(session, exp, **args)]
    searches = [run for run, _ in launched]
    baselines = [b for _, bs in launched for b in bs]
    _hand_over(session, bridge, [*searches, *baselines])
    return LaunchResult(run=_public(session, searches[0]), baselines=[_public(session, b) for b in baselines],
                        repeats=[_public(session, r) for r in searches] if len(searches) > 1 else [])


@router.get("/runs", response_model=RunRows)
def list_runs(session: SessionDep, _: Reader,
              experiment_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
              status: RunStatus | None = None,
              kind: Annotated[str | None, Query(pattern=pattern(RUN_KINDS))] = None,
              method: Annotated[str | None, Query(pattern=pattern(METHODS))] = None,
              baseline_of: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
              parent_run_id: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Retrain runs of this run.")] = None,
              owner: Annotated[str | None, Query(max_length=100, description="User name of the experiment's owner.")] = None,
              q: Annotated[str | None, Query(max_length=200, description="Substring of the method, status reason, job id or "
                                                                         "experiment name, or a run id.")] = None,
              sort: Annotated[str, Query(pattern=sort_pattern(RUN_COLUMNS, RUN_DERIVED),
                                         description="A column, `-` first for descending: " + ", ".join([*RUN_COLUMNS, *RUN_DERIVED]))] = "-id",
              limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> RunRows:
    """A page of runs as table rows (headline IoU, the random baselines' IoU, budget, parameters), sorted server-side."""
    for value, name in ((owner, "owner"), (q, "q")):
        if value:
            crud.check_json_safe(value, name)
    rows, total = listing.list_runs(session, sort=sort, limit=limit, offset=offset, q=q, owner=owner,
                                    experiment_id=experiment_id, status=status, kind=kind, method=method,
                                    baseline_of=baseline_of, parent_run_id=parent_run_id)
    return RunRows(items=rows, total=total, limit=limit, offset=offset, sort=sort)


@router.get("/runs/{run_id}", response_model=RunDetail)
def read_run(run_id: Id, session: SessionDep, _: Reader) -> RunDetail:
    return _detail(session, crud.get_run(session, run_id))


def _writable(session, who, run_id: int) -> Run:
    run = crud.get_run(session, run_id)
    check_owner(who, crud.get_experiment(session, run.experiment_id).owner_id)
    return run


@router.post("/runs/{run_id}/cancel", response_model=RunDetail)
def cancel_run(run_id: Id, session: SessionDep, who: Writer, bridge: BridgeDep) -> RunDetail:
    """409 when the run has already finished. The worker is told to stop the job; the run is cancelled at once."""
    run = crud.cancel_run(session, _writable(session, who, run_id))
    try:
        bridge.cancel(run.id)
    except Exception as exc:
        # The run stays cancelled: the worker's watcher kills jobs of cancelled runs when it next looks.
        log.warning("could not send cancel of run %s to the worker: %s", run.id, exc)
    return _detail(session, run)


@router.post("/runs/{run_id}/retry", response_model=RunDetail)
def retry_run(run_id: Id, session: SessionDep, who: Writer, bridge: BridgeDep) -> RunDetail:
    """Queue a failed, cancelled, stale or preempted run again (attempt + 1); 409 otherwise."""
    run = crud.retry_run(session, _writable(session, who, run_id))
    _hand_over(session, bridge, [run])
    return _detail(session, run)


@router.post("/runs/{run_id}/ingest-token", status_code=201, response_model=TokenSecret)
def ingest_token(run_id: Id, session: SessionDep, who: Writer) -> TokenSecret:
    """A token that can only append events to this run (for a watcher on another machine)."""
    run = _writable(session, who, run_id)
    token = create_ingest_token(session, run.id)
    from backend.api.routes.users import token_secret

    return token_secret(session, token)


@router.get("/runs/{run_id}/artifacts", response_model=list[Artifact])
def list_artifacts(run_id: Id, session: SessionDep, _: Reader) -> list[Artifact]:
    """Files in the run directory: genotypes, checkpoints, prediction samples, logs."""
    run = crud.get_run(session, run_id)
    root = Path(run.run_dir)
    if not run.run_dir or not root.is_dir():
        return []
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out.append(Artifact(path=str(p.relative_to(root)), size=p.stat().st_size, kind=_ARTIFACT_KINDS.get(p.suffix, "other")))
        if len(out) >= 2000:
            break
    return out


@router.get("/runs/{run_id}/artifacts/{path:path}", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes."}})
def read_artifact(run_id: Id, path: str, session: SessionDep, _: Reader) -> FileResponse:
    """One file of the run directory (a prediction sample, genotype.json, a log), by its path from the listing."""
    run = crud.get_run(session, run_id)
    if "\x00" in path or not run.run_dir:
        raise HTTPException(404, f"run {run_id} has no artifact {path!r}")
    root = Path(run.run_dir).resolve()
    target = (root / path).resolve()
    # Confined to the run directory: no `..`, no absolute path, no symlink leading out.
    if root not in target.parents or not target.is_file():
        raise HTTPException(404, f"run {run_id} has no artifact {path!r}")
    return FileResponse(target, filename=target.name)
