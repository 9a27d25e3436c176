"""What the UI builds from instead of restating it: the experiment config's JSON Schema (the form) and the names
that several tiers share (methods, event kinds, status states, run statuses). No token needed."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlmodel import Field, SQLModel

from backend.headline import BACKGROUND_ONLY_BELOW
from backend.models import ACTIVE_STATUSES, RETRIABLE_STATUSES, RUN_STATUSES, TERMINAL_STATUSES
from nas_core.config import CONTINUOUS_METHODS, DISCRETE_METHODS, METHODS, experiment_json_schema
from nas_core.events import EVENT_KINDS, FINAL_STATES, HEARTBEAT_S, STALE_AFTER_S, StatusState
from nas_core.rundir import RUN_KINDS, STAGES

router = APIRouter(tags=["schema"])


@router.get("/schema/experiment", response_model=dict[str, Any])
def experiment_schema() -> dict[str, Any]:
    """`nas_core.config.ExperimentConfig` as JSON Schema, with defaults and descriptions."""
    return experiment_json_schema()


class Names(SQLModel):
    """The shared names, each from its one definition (nas_core.config, nas_core.events, nas_core.rundir,
    backend.models), in their defined order."""

    methods: list[str]
    continuous_methods: list[str]
    discrete_methods: list[str]
    event_kinds: list[str]
    status_states: list[str]
    final_states: list[str]
    stages: list[str]
    run_kinds: list[str]
    run_statuses: list[str]
    active_statuses: list[str]
    terminal_statuses: list[str]
    retriable_statuses: list[str]
    heartbeat_s: float
    stale_after_s: float
    background_only_below: float = Field(description="A foreground test IoU below this predicts (almost) only background.")


def _ordered(subset, order) -> list[str]:
    return [str(x) for x in order if x in subset]


@router.get("/schema/names", response_model=Names)
def names() -> Names:
    return Names(methods=list(METHODS), continuous_methods=list(CONTINUOUS_METHODS), discrete_methods=list(DISCRETE_METHODS),
                 event_kinds=[str(k) for k in EVENT_KINDS], status_states=[str(s) for s in StatusState],
                 final_states=_ordered(FINAL_STATES, StatusState), stages=list(STAGES), run_kinds=list(RUN_KINDS),
                 run_statuses=list(RUN_STATUSES), active_statuses=_ordered(ACTIVE_STATUSES, RUN_STATUSES),
                 terminal_statuses=_ordered(TERMINAL_STATUSES, RUN_STATUSES),
                 retriable_statuses=_ordered(RETRIABLE_STATUSES, RUN_STATUSES), heartbeat_s=HEARTBEAT_S,
                 stale_after_s=STALE_AFTER_S, background_only_below=BACKGROUND_ONLY_BELOW)
