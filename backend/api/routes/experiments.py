"""Experiments: create from the one config schema, read, list, update, clone, delete."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from backend import crud, listing
from backend.api.deps import Id, Reader, SessionDep, SettingsDep, Writer, check_owner
from backend.listing import EXPERIMENT_COLUMNS, EXPERIMENT_DERIVED, sort_pattern
from backend.models import Experiment, ExperimentClone, ExperimentPublic, ExperimentUpdate, RunStatus
from backend.summary import ExperimentRows
from nas_core.config import METHODS, ExperimentConfig
from nas_core.events import pattern

router = APIRouter(prefix="/experiments", tags=["experiments"])


def public(exp: Experiment, counts: dict[str, int] | None = None) -> ExperimentPublic:
    return ExperimentPublic.model_validate(exp, update={"run_counts": counts or {}})


def _public_one(session, exp: Experiment) -> ExperimentPublic:
    return public(exp, crud.run_counts(session, [exp.id])[exp.id])


@router.post("", status_code=201, response_model=ExperimentPublic)
def create_experiment(config: ExperimentConfig, session: SessionDep, who: Writer, settings: SettingsDep) -> ExperimentPublic:
    """The body is the experiment config itself (the YAML file's content as JSON); data.path must lie in a data root."""
    crud.check_json_safe(config.model_dump(), "body")
    config = crud.with_confined_data(config, settings.data_roots)
    return public(crud.create_experiment(session, config, who.user_id))


@router.get("", response_model=ExperimentRows)
def list_experiments(session: SessionDep, _: Reader,
                     q: Annotated[str | None, Query(max_length=200, description="Substring of name or description.")] = None,
                     owner_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                     owner: Annotated[str | None, Query(max_length=100, description="The owner's user name.")] = None,
                     method: Annotated[str | None, Query(pattern=pattern(METHODS), description="The config's search.method.")] = None,
                     status: Annotated[RunStatus | None, Query(description="Only experiments with a run in this status.")] = None,
                     sort: Annotated[str, Query(pattern=sort_pattern(EXPERIMENT_COLUMNS, EXPERIMENT_DERIVED),
                                                description="A column, `-` first for descending: "
                                                            + ", ".join([*EXPERIMENT_COLUMNS, *EXPERIMENT_DERIVED]))] = "-id",
                     limit: Annotated[int, Query(ge=1, le=500)] = 50,
                     offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> ExperimentRows:
    """A page of experiments as table rows: runs counted by status, the best run's headline IoU, the baselines' IoU."""
    for value, name in ((q, "q"), (owner, "owner")):
        if value:
            crud.check_json_safe(value, name)
    rows, total = listing.list_experiments(session, sort=sort, limit=limit, offset=offset, q=q, owner=owner,
                                           owner_id=owner_id, method=method, status=status)
    return ExperimentRows(items=rows, total=total, limit=limit, offset=offset, sort=sort)


@router.get("/{experiment_id}", response_model=ExperimentPublic)
def read_experiment(experiment_id: Id, session: SessionDep, _: Reader) -> ExperimentPublic:
    return _public_one(session, crud.get_experiment(session, experiment_id))


@router.put("/{experiment_id}", response_model=ExperimentPublic)
def replace_experiment(experiment_id: Id, config: ExperimentConfig, session: SessionDep, who: Writer,
                       settings: SettingsDep) -> ExperimentPublic:
    """Replace the config; runs keep the snapshot they were launched with."""
    exp = crud.get_experiment(session, experiment_id)
    check_owner(who, exp.owner_id)
    crud.check_json_safe(config.model_dump(), "body")
    config = crud.with_confined_data(config, settings.data_roots)
    return _public_one(session, crud.replace_config(session, exp, config))


@router.patch("/{experiment_id}", response_model=ExperimentPublic)
def update_experiment(experiment_id: Id, body: ExperimentUpdate, session: SessionDep, who: Writer) -> ExperimentPublic:
    exp = crud.get_experiment(session, experiment_id)
    check_owner(who, exp.owner_id)
    crud.check_json_safe(body.model_dump(), "body")
    return _public_one(session, crud.update_experiment(session, exp, name=body.name, description=body.description))


@router.post("/{experiment_id}/clone", status_code=201, response_model=ExperimentPublic)
def clone_experiment(experiment_id: Id, session: SessionDep, who: Writer, body: ExperimentClone | None = None) -> ExperimentPublic:
    exp = crud.get_experiment(session, experiment_id)
    name = body.name if body else None
    if name:
        crud.check_json_safe(name, "body.name")
    return public(crud.clone_experiment(session, exp, who.user_id, name))


@router.delete("/{experiment_id}", status_code=204, response_class=Response)
def delete_experiment(experiment_id: Id, session: SessionDep, who: Writer) -> Response:
    """Refused (409) while any of its runs is active."""
    exp = crud.get_experiment(session, experiment_id)
    check_owner(who, exp.owner_id)
    crud.delete_experiment(session, exp)
    return Response(status_code=204)
