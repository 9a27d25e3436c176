"""Reads and writes of experiments, runs and events; shared by the API and the worker (which imports it).

Errors are plain exceptions (NotFound, Conflict, ValueError); the API maps them to 404, 409 and 422.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select

from backend.core.config import get_settings
# Errors and the event ingest live in their own modules; they are re-exported so that the worker and the API
# know one module for reads and writes.
from backend.errors import Conflict, NotFound, TooLarge, check_json_safe  # noqa: F401
from backend.ingest import event_dict, events_since, ingest_events, ingest_many, validate_events  # noqa: F401
from backend.models import (
    ACTIVE_STATUSES,
    RUN_STATUSES,
    RETRIABLE_STATUSES,
    TERMINAL_STATUSES,
    RunStatus,
    Event,
    Experiment,
    Run,
    utcnow,
)
from nas_core.config import CONTINUOUS_METHODS, ExperimentConfig
from nas_core.data.roots import find_in_roots
from nas_core.space.genotypes import Genotype


# Which status may follow which. A status may repeat itself (the worker re-sends, or updates the reason).
_S = RunStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    _S.queued: frozenset({_S.submitted, _S.pending, _S.running, _S.failed, _S.cancelled}),
    _S.submitted: frozenset({_S.pending, _S.running, _S.succeeded, _S.failed, _S.cancelled, _S.preempted, _S.stale}),
    _S.pending: frozenset({_S.running, _S.succeeded, _S.failed, _S.cancelled, _S.preempted, _S.stale}),
    _S.running: frozenset({_S.succeeded, _S.failed, _S.cancelled, _S.stale, _S.preempted, _S.pending}),
    _S.stale: frozenset({_S.running, _S.succeeded, _S.failed, _S.cancelled, _S.preempted, _S.queued}),
    _S.preempted: frozenset({_S.queued, _S.submitted, _S.pending, _S.running, _S.failed, _S.cancelled}),
    _S.failed: frozenset({_S.queued}),
    _S.cancelled: frozenset({_S.queued}),
    _S.succeeded: frozenset(),
}
_STATUS_FIELDS = {"status_reason", "job_id", "pid", "progress", "log_offset", "run_dir", "resources", "attempt", "launcher"}


# ---------------------------------------------------------------------------------------------- experiments


def get_experiment(session: Session, experiment_id: int) -> Experiment:
    exp = session.get(Experiment, experiment_id)
    if exp is None:
        raise NotFound(f"experiment {experiment_id} not found")
    return exp


def create_experiment(session: Session, config: ExperimentConfig, owner_id: int | None, cloned_from: int | None = None) -> Experiment:
    exp = Experiment(name=config.name, description=config.description, config=config.model_dump(mode="json"),
                     owner_id=owner_id, cloned_from=cloned_from)
    session.add(exp)
    session.commit()
    session.refresh(exp)
    return exp


def run_counts(session: Session, experiment_ids: list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {i: {} for i in experiment_ids}
    if experiment_ids:
        rows = session.exec(select(Run.experiment_id, Run.status, func.count()).where(col(Run.experiment_id).in_(experiment_ids))
                            .group_by(Run.experiment_id, Run.status)).all()
        for exp_id, status, n in rows:
            out[exp_id][status] = n
    return out


def replace_config(session: Session, exp: Experiment, config: ExperimentConfig) -> Experiment:
    exp.config = config.model_dump(mode="json")
    exp.name, exp.description, exp.updated_at = config.name, config.description, utcnow()
    session.add(exp)
    session.commit()
    session.refresh(exp)
    return exp


def update_experiment(session: Session, exp: Experiment, *, name: str | None = None, description: str | None = None) -> Experiment:
    # name and description live in the config too: the config stays the one object the UI and YAML share.
    cfg = dict(exp.config)
    if name is not None:
        cfg["name"] = name
    if description is not None:
        cfg["description"] = description
    return replace_config(session, exp, ExperimentConfig.model_validate(cfg))


def clone_experiment(session: Session, exp: Experiment, owner_id: int | None, name: str | None = None) -> Experiment:
    cfg = dict(exp.config)
    cfg["name"] = name or f"{exp.name} (copy)"[:200]
    return create_experiment(session, ExperimentConfig.model_validate(cfg), owner_id, cloned_from=exp.id)


def delete_experiment(session: Session, exp: Experiment) -> None:
    active = session.exec(select(func.count()).select_from(Run).where(Run.experiment_id == exp.id,
                                                                      col(Run.status).in_(ACTIVE_STATUSES))).one()
    if active:
        raise Conflict(f"experiment {exp.id} has {active} active run(s); cancel them before deleting it")
    run_ids = session.exec(select(Run.id).where(Run.experiment_id == exp.id)).all()
    # Delete children explicitly: SQLite enforces ON DELETE CASCADE only with the pragma, other tools may not set it.
    if run_ids:
        from backend.models import ApiToken

        for model, column in ((Event, Event.run_id), (ApiToken, ApiToken.run_id)):
            for row in session.exec(select(model).where(col(column).in_(run_ids))).all():
                session.delete(row)
        session.flush()
        for run in session.exec(select(Run).where(Run.experiment_id == exp.id)).all():
            run.baseline_of = run.parent_run_id = None
            session.add(run)
        session.flush()
        for run in session.exec(select(Run).where(Run.experiment_id == exp.id)).all():
            session.delete(run)
        session.flush()
    for clone in session.exec(select(Experiment).where(Experiment.cloned_from == exp.id)).all():
        clone.cloned_from = None
        session.add(clone)
    session.delete(exp)
    session.commit()


# ---------------------------------------------------------------------------------------------- runs


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


def list_runs(session: Session, *, experiment_id: int | None = None, status: str | None = None, kind: str | None = None,
              method: str | None = None, baseline_of: int | None = None, parent_run_id: int | None = None,
              limit: int = 50, offset: int = 0) -> tuple[Sequence[Run], int]:
    where = []
    for column, value in ((Run.experiment_id, experiment_id), (Run.status, status), (Run.kind, kind), (Run.method, method),
                          (Run.baseline_of, baseline_of), (Run.parent_run_id, parent_run_id)):
        if value is not None:
            where.append(column == value)
    total = session.exec(select(func.count()).select_from(Run).where(*where)).one()
    rows = session.exec(select(Run).where(*where).order_by(col(Run.id).desc()).offset(offset).limit(limit)).all()
    return rows, total


def create_run(session: Session, exp: Experiment, *, kind: str, method: str, launcher: str, resources: dict[str, Any],
               config: dict[str, Any], baseline_of: int | None = None, parent_run_id: int | None = None,
               genotype: dict[str, Any] | None = None, runs_dir: Path | None = None,
               network: dict[str, Any] | None = None) -> Run:
    run = Run(experiment_id=exp.id, kind=kind, method=method, launcher=launcher, resources=resources, config=config,
              baseline_of=baseline_of, parent_run_id=parent_run_id, genotype=genotype, network=network)
    session.add(run)
    session.flush()
    run.run_dir = str(((runs_dir or get_settings().runs_dir) / str(run.id)).resolve())
    session.add(run)
    return run


def with_confined_data(cfg: ExperimentConfig, roots: Sequence[Path]) -> ExperimentConfig:
    """The config with data.path resolved (a relative one inside the data roots) and checked against them; the
    resolved path is what is stored, so the run later opens what was checked. OutsideDataRoots (a ValueError) if not.
    Likewise space.init_from, which may also lie in the runs folder."""
    if cfg.space.init_from is not None:
        # A partial search's backbone checkpoint: a user's file in the data roots, or a finished run's weights.
        init = find_in_roots(cfg.space.init_from, [*roots, get_settings().runs_dir], field="space.init_from")
        cfg = cfg.model_copy(update={"space": cfg.space.model_copy(update={"init_from": str(init)})})
    if cfg.data.path is None:
        return cfg
    path = find_in_roots(cfg.data.path, roots)
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"path": str(path)})})


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _launch_error(exc: ValidationError) -> str:
    # Errors inside the launcher section are the body's resources: name them as the caller wrote them.
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        where = ".".join(["resources", *loc[1:]] if loc[:1] == ["launcher"] else loc)
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


def launch_config(cfg: ExperimentConfig, *, method: str, launcher: str | None = None,
                  resources: dict[str, Any] | None = None) -> ExperimentConfig:
    """The config a run is launched with: the launch body's method, launcher and resources merged into the
    experiment's, then the whole config validated again, so a launch obeys the same schema (and launch-shape
    rules) as the YAML file. ValueError names the field as `resources.<field>`."""
    over = dict(resources or {})
    if launcher is not None:
        if over.get("kind", launcher) != launcher:
            raise ValueError(f"resources.kind: {over['kind']!r} disagrees with launcher {launcher!r}; give one of them")
        over["kind"] = launcher
    data = cfg.model_dump(mode="json")
    data["search"]["method"] = method
    data["launcher"] = _merged(data["launcher"], over)
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_launch_error(exc)) from None


def launch(session: Session, exp: Experiment, *, kind: str = "search", method: str | None = None, launcher: str | None = None,
           resources: dict[str, Any] | None = None, parent_run_id: int | None = None, baselines: bool = True,
           genotype: dict[str, Any] | None = None, retrain_epochs: int | None = None, seed: int | None = None,
           runs_dir: Path | None = None, baseline_seeds: Sequence[int] | None = None) -> tuple[Run, list[Run]]:
    """Create a queued run (and the baselines a search asks for); the caller hands them to the worker.

    The baselines: random ones for a continuous search (`baseline.random`), and for any search one run per
    hand-designed network of `baseline.networks` (kind baseline, method the network's name, the search's config
    and seed; it trains and evaluates that network only, at once, not after the search).
    The run's `launcher` and `resources` are the validated launcher section of its config: what the worker will use.
    `baseline_seeds`: the random baselines' seeds (default: config seed + 0 .. baseline.seeds - 1)."""
    cfg = ExperimentConfig.model_validate(exp.config)
    if genotype is not None:  # the given cell must be buildable in this experiment's space, or 422 now, not a failed run
        Genotype.from_dict(genotype).check_fits(cfg.space)
    parent = None
    if parent_run_id is not None:
        parent = get_run(session, parent_run_id)
        if parent.experiment_id != exp.id:
            raise ValueError(f"parent_run_id: run {parent_run_id} belongs to another experiment")
    # A retrain run is named after the method that found its cell (the worker reads the genotype at submit).
    method = method or (parent.method if kind == "retrain" and parent is not None else cfg.search.method)
    launched = launch_config(cfg, method=method, launcher=launcher, resources=resources)
    snapshot = launched.model_dump(mode="json")
    if retrain_epochs is not None or seed is not None:
        snapshot = ExperimentConfig.model_validate(_merged(snapshot, {
            **({"retrain": {"epochs": retrain_epochs}} if retrain_epochs is not None else {}),
            **({"seed": seed} if seed is not None else {})})).model_dump(mode="json")
    res = snapshot["launcher"]
    run = create_run(session, exp, kind=kind, method=method, launcher=launched.launcher.kind, resources=res,
                     config=snapshot, parent_run_id=parent_run_id, genotype=genotype, runs_dir=runs_dir)
    made: list[Run] = []
    if baselines and kind == "search" and method in CONTINUOUS_METHODS and cfg.baseline.random:
        for base_seed in baseline_seeds if baseline_seeds is not None else [cfg.seed + i for i in range(cfg.baseline.seeds)]:
            base = dict(snapshot, seed=base_seed)
            base["search"] = dict(snapshot["search"], method="random")
            made.append(create_run(session, exp, kind="baseline", method="random", launcher=run.launcher, resources=res,
                                   config=base, baseline_of=run.id, runs_dir=runs_dir))
    if baselines and kind == "search" and launched.baseline.networks:
        # One process, as the searched network's own retrain and evaluate run (rank 0 alone, never data-parallel).
        single = _merged(snapshot, {"distributed": {"engine": "none"},
                                    "launcher": {"processes": 1, "slurm": {"nodes": 1, "tasks_per_node": 1}}})
        for net in launched.baseline.networks:
            made.append(create_run(session, exp, kind="baseline", method=net.name, launcher=run.launcher,
                                   resources=single["launcher"], config=single, baseline_of=run.id,
                                   runs_dir=runs_dir, network=net.model_dump(mode="json")))
    session.commit()
    for r in (run, *made):
        session.refresh(r)
    return run, made


def launch_repeats(session: Session, exp: Experiment, *, seed: int | None = None, baselines: bool = True,
                   **kw: Any) -> list[tuple[Run, list[Run]]]:
    """A search launch of an experiment with `repeats: N` (a study over seeds): N searches with seeds s .. s+N-1
    (s: the launch's seed, else the config's), each with one random baseline of its own seed, so every seed has
    its searched and its random arm. With repeats 1 this is `launch` itself."""
    cfg = ExperimentConfig.model_validate(exp.config)
    if cfg.repeats == 1:
        return [launch(session, exp, seed=seed, baselines=baselines, **kw)]
    first = cfg.seed if seed is None else seed
    return [launch(session, exp, seed=s, baselines=baselines, baseline_seeds=[s], **kw)
            for s in range(first, first + cfg.repeats)]


def set_run_status(session: Session, run_id: int, status: str, **fields: Any) -> Run:
    """Move a run to `status` (and set `fields`), or raise Conflict when that transition cannot happen."""
    if status not in RUN_STATUSES:
        raise ValueError(f"status: {status!r} is not one of {', '.join(RUN_STATUSES)}")
    unknown = set(fields) - _STATUS_FIELDS
    if unknown:
        raise ValueError(f"set_run_status: unknown field(s) {sorted(unknown)}; allowed: {sorted(_STATUS_FIELDS)}")
    run = session.get(Run, run_id, with_for_update=True) if session.get_bind().dialect.name == "postgresql" else session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    if status != run.status and status not in TRANSITIONS[run.status]:
        raise Conflict(f"run {run_id} is {run.status}; it cannot become {status}")
    now = utcnow()
    if status == RunStatus.running and run.started_at is None:
        run.started_at = now
    if status in TERMINAL_STATUSES and run.finished_at is None:
        run.finished_at = now
    if status == RunStatus.queued and run.status != RunStatus.queued:
        run.finished_at = None
    run.status = str(status)  # the plain string in the column, whichever form the caller used
    for key, value in fields.items():
        setattr(run, key, value)
    session.add(run)
    session.commit()
    session.refresh(run)
    return run


def retry_run(session: Session, run: Run) -> Run:
    if run.status not in RETRIABLE_STATUSES:
        allowed = ", ".join(s for s in RUN_STATUSES if s in RETRIABLE_STATUSES)
        raise Conflict(f"run {run.id} is {run.status}; only {allowed} runs can be retried")
    return set_run_status(session, run.id, RunStatus.queued, attempt=run.attempt + 1, status_reason="retried", pid=None, job_id=None)


def cancel_run(session: Session, run: Run, reason: str = "cancelled by user") -> Run:
    if run.status in TERMINAL_STATUSES:
        raise Conflict(f"run {run.id} is already {run.status}; there is nothing to cancel")
    return set_run_status(session, run.id, RunStatus.cancelled, status_reason=reason)
