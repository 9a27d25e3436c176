"""SQLModel tables (users, tokens, experiments, runs, events) and their Create/Update/Public schemas."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, field_validator, model_validator
from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from nas_core import events as event_format
from nas_core.config import METHODS, ExperimentConfig, RetrainConfig
from nas_core.models.hand_designed import NetworkConfig
from nas_core.rundir import RUN_KINDS
from nas_core.space.genotypes import Genotype

# A run's status in the database (the platform's word; the search's own word is a `status` event's StatusState).
class RunStatus(StrEnum):
    queued = "queued"        # stored, not yet handed to a launcher (a baseline waits here for its search)
    submitted = "submitted"  # handed to the launcher
    pending = "pending"      # the scheduler holds it (status_reason says why)
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    stale = "stale"          # running, but no event for STALE_AFTER_S
    preempted = "preempted"  # stopped from outside; requeued from its checkpoint


RUN_STATUSES = tuple(RunStatus)
TERMINAL_STATUSES = frozenset({RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled})
ACTIVE_STATUSES = frozenset(RUN_STATUSES) - TERMINAL_STATUSES
# Statuses a user may queue again (POST /runs/{id}/retry).
RETRIABLE_STATUSES = frozenset({RunStatus.failed, RunStatus.cancelled, RunStatus.stale, RunStatus.preempted})
# A baseline is created by the platform beside its search, never launched on its own.
LAUNCH_KINDS = tuple(k for k in RUN_KINDS if k != "baseline")
SCOPES = ("read", "write", "admin")

RunKind = Literal[RUN_KINDS]
Method = Literal[METHODS]
Launcher = Literal["local", "slurm"]
Scope = Literal["read", "write", "admin"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC both ways: SQLite hands back naive datetimes, which would leave the API's `date-time`s
    without an offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None:
            value = (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), **kw))


def _json(nullable: bool = False) -> Any:
    return Column(JSON, nullable=nullable)


def _bound(model: Any, field: str, which: str) -> Any:
    """A bound of a config field (`ge`, `le`), so an API override obeys the same limits as the YAML file."""
    return next(getattr(m, which) for m in model.model_fields[field].metadata if getattr(m, which, None) is not None)


# ---------------------------------------------------------------------------------------------------- tables


class User(SQLModel, table=True):
    __tablename__ = "user_account"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    created_at: dt.datetime = _ts(nullable=False)


class ApiToken(SQLModel, table=True):
    """A bearer token: `nf_<id>_<secret>`; only sha256(secret) is kept. An ingest token has run_id set."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user_account.id", index=True, ondelete="CASCADE")
    run_id: int | None = Field(default=None, foreign_key="run.id", index=True, ondelete="CASCADE")
    name: str = Field(default="", max_length=200)
    scopes: str = Field(default="read", max_length=100, description="Space-separated: read, write, admin, ingest.")
    secret_hash: str = Field(max_length=64)
    revoked: bool = False
    created_at: dt.datetime = _ts(nullable=False)
    expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_used_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class Experiment(SQLModel, table=True):
    __table_args__ = (Index("ix_experiment_owner_created", "owner_id", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, index=True)
    description: str = Field(default="", max_length=10000)
    config: dict[str, Any] = Field(default_factory=dict, sa_column=_json())
    owner_id: int | None = Field(default=None, foreign_key="user_account.id", ondelete="SET NULL")
    cloned_from: int | None = Field(default=None, foreign_key="experiment.id", ondelete="SET NULL")
    created_at: dt.datetime = _ts(nullable=False)
    updated_at: dt.datetime = _ts(nullable=False)


class Run(SQLModel, table=True):
    __table_args__ = (
        Index("ix_run_experiment_created", "experiment_id", "created_at"),
        Index("ix_run_status", "status"),
        Index("ix_run_baseline_of", "baseline_of"),
    )
    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", ondelete="CASCADE")
    kind: str = Field(default="search", max_length=20)
    method: str = Field(max_length=40)
    launcher: str = Field(default="local", max_length=20)
    resources: dict[str, Any] = Field(default_factory=dict, sa_column=_json())
    config: dict[str, Any] = Field(default_factory=dict, sa_column=_json(), description="Experiment config as launched.")
    status: str = Field(default=RunStatus.queued, max_length=20)
    status_reason: str = Field(default="", max_length=2000)
    job_id: str | None = Field(default=None, max_length=100)
    pid: int | None = None
    attempt: int = 1
    progress: float = 0.0
    baseline_of: int | None = Field(default=None, foreign_key="run.id", ondelete="SET NULL")
    parent_run_id: int | None = Field(default=None, foreign_key="run.id", ondelete="SET NULL")
    genotype: dict[str, Any] | None = Field(default=None, sa_column=_json(nullable=True),
                                            description="A retrain run: the genotype it retrains (given, or its parent's).")
    network: dict[str, Any] | None = Field(default=None, sa_column=_json(nullable=True),
                                           description="A hand-designed baseline: the network it trains "
                                                       "(nas_core.models.NetworkConfig, one of baseline.networks).")
    run_dir: str = Field(default="", max_length=1000)
    log_offset: int = Field(default=0, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), nullable=False))
    last_seq: int = 0
    created_at: dt.datetime = _ts(nullable=False)
    started_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    finished_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_event_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class Event(SQLModel, table=True):
    """One line of a run's event log (nas_core/events.py); `extra` keeps any keys beyond the four standard ones."""

    __table_args__ = (
        UniqueConstraint("run_id", "seq", name="uq_event_run_seq"),
        Index("ix_event_run_kind_seq", "run_id", "kind", "seq"),
    )
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE")
    seq: int
    kind: str = Field(max_length=20)
    time: float
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=_json())
    extra: dict[str, Any] | None = Field(default=None, sa_column=_json(nullable=True))


# ---------------------------------------------------------------------------------------------------- schemas


class ErrorResponse(SQLModel):
    detail: Any
    message: str | None = None


class Page(SQLModel):
    total: int
    limit: int
    offset: int


class ExperimentUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10000)


class ExperimentClone(SQLModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)


class ExperimentPublic(SQLModel):
    id: int
    name: str
    description: str
    config: dict[str, Any]
    owner_id: int | None
    cloned_from: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    run_counts: dict[str, int] = Field(default_factory=dict)


class RunLaunch(SQLModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal[LAUNCH_KINDS] = "search"
    method: Method | None = Field(default=None, description="Default: the experiment's search.method.")
    launcher: Launcher | None = Field(default=None, description="Default: the experiment's launcher.kind.")
    resources: dict[str, Any] | None = Field(default=None, description="Overrides of the experiment's `launcher` section, "
                                             "validated by its schema (kind, processes, max_restarts, slurm.*).")
    parent_run_id: int | None = Field(default=None, ge=1, description="retrain: the search run whose genotype is retrained.")
    genotype: dict[str, Any] | None = Field(default=None, description="retrain: the genotype to retrain "
                                            "(`Genotype.to_dict()`), instead of the parent's.")
    retrain_epochs: int | None = Field(default=None, ge=_bound(RetrainConfig, "epochs", "ge"),
                                       le=_bound(RetrainConfig, "epochs", "le"),
                                       description="retrain: epochs (default: the experiment's retrain.epochs).")
    seed: int | None = Field(default=None, ge=0, description="Default: the experiment's seed.")
    baselines: bool = Field(default=True, description="Create the baselines the config asks for (random, and one "
                            "per `baseline.networks` entry).")

    @field_validator("genotype")
    @classmethod
    def _genotype(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else Genotype.from_dict(value).to_dict()

    @model_validator(mode="after")
    def _retrain_has_a_cell(self) -> "RunLaunch":
        if self.kind == "retrain" and self.parent_run_id is None and self.genotype is None:
            raise ValueError("a retrain run needs parent_run_id (retrain its genotype) or genotype")
        if self.kind != "retrain" and (self.genotype is not None or self.retrain_epochs is not None):
            raise ValueError("genotype and retrain_epochs are for kind 'retrain'")
        return self


class Headline(SQLModel):
    """The one IoU a run is summed up by (backend/headline.py), with what it is: pages show `label` beside it."""

    value: float | None
    label: str
    source: str | None = Field(description="Where it comes from: evaluate, candidate, search, or None (no IoU yet).")
    background_only: bool = Field(default=False, description="A foreground IoU below headline.BACKGROUND_ONLY_BELOW: "
                                  "the model predicts (almost) only background. Only a foreground measure sets it.")


class RunPublic(SQLModel):
    id: int
    experiment_id: int
    kind: RunKind
    method: str
    launcher: str
    resources: dict[str, Any]
    status: str
    status_reason: str
    job_id: str | None
    pid: int | None
    attempt: int
    progress: float
    baseline_of: int | None
    parent_run_id: int | None
    genotype: dict[str, Any] | None = None
    network: dict[str, Any] | None = Field(default=None, description="A hand-designed baseline: its network "
                                           "(`NetworkConfig`) plus `label`, the name pages and plots give it.")
    run_dir: str
    last_seq: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    last_event_at: dt.datetime | None
    headline: Headline | None = None


    @field_validator("network")
    @classmethod
    def _labelled(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        net = NetworkConfig.model_validate({k: v for k, v in value.items() if k != "label"})
        return {**net.model_dump(mode="json"), "label": net.label}


class RunDetail(RunPublic):
    config: dict[str, Any]
    log_offset: int
    baselines: list[int] = Field(default_factory=list)
    retrains: list[int] = Field(default_factory=list, description="Retrain runs of this run's genotype.")


class LaunchResult(SQLModel):
    run: RunPublic
    baselines: list[RunPublic]
    repeats: list[RunPublic] = Field(default_factory=list, description="A study over seeds (config `repeats` > 1): "
                                     "every search run of the launch, `run` first; each has one baseline in `baselines`.")


class EventIn(event_format.Event):
    """One event as the run's log holds it (`nas_core.events.Event`); `time` may be left to the server."""

    time: float | None = Field(default=None, ge=0, le=1e11, description="Unix time of writing; default: receipt.")


class EventPublic(SQLModel):
    model_config = ConfigDict(extra="allow")
    run_id: int
    seq: int
    kind: str
    time: float
    payload: dict[str, Any]


class IngestResult(SQLModel):
    received: int
    stored: int
    last_seq: int


class TokenCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=200)
    scopes: list[Scope] = Field(default_factory=lambda: ["read"], min_length=1)
    expires_in: int | None = Field(default=None, ge=60, le=366 * 86400,
                                   description="Seconds until the token stops working; default: it never expires.")


class UserCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, regex=r"^[A-Za-z0-9_.@\-]+$")
    scopes: list[Scope] = Field(default_factory=lambda: ["read"], min_length=1)


class TokenPublic(SQLModel):
    id: int
    name: str
    scopes: list[str]
    user_id: int | None
    run_id: int | None
    revoked: bool
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = Field(default=None, description="Recorded at most once a minute.")


class TokenSecret(TokenPublic):
    token: str = Field(description="Shown once; only its hash is stored.")


class UserPublic(SQLModel):
    id: int
    name: str
    created_at: dt.datetime


class Me(SQLModel):
    user: UserPublic | None
    scopes: list[str]
    run_id: int | None


class UserWithToken(SQLModel):
    user: UserPublic
    token: TokenSecret


class StreamTicketCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(max_length=200, description="The stream this ticket opens, e.g. /api/runs/3/stream.")


class StreamTicket(SQLModel):
    ticket: str = Field(description="Send as ?ticket= on that stream's URL (EventSource cannot send headers).")
    path: str
    expires_in: int = Field(description="Seconds the ticket stays valid.")


class HealthPart(SQLModel):
    ok: bool
    detail: Any = None


class Health(SQLModel):
    ok: bool
    database: HealthPart
    redis: HealthPart
    workers: HealthPart
    # Only under `make run`'s supervisor: each service's state and restart count ({name: {state, restarts, ...}}).
    services: HealthPart | None = None


class Artifact(SQLModel):
    path: str
    size: int
    kind: str


def experiment_config_from(exp: Experiment) -> ExperimentConfig:
    return ExperimentConfig.model_validate(exp.config)
