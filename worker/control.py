"""Launch and cancel of one run, keyed by run id and safe to repeat: the bodies of the Celery tasks."""
from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError
from sqlmodel import Session

from backend import crud
from backend.core.config import get_settings
from backend.core.db import session_scope
from backend.models import TERMINAL_STATUSES, Run, RunStatus
from nas_core.config import ExperimentConfig, LauncherConfig, format_validation_error
from nas_core.data.roots import confine_data_path
from nas_core.rundir import LaunchRecord, RunDir, RunOverrides, read_json, write_config
from nas_core.space.genotypes import Genotype
from worker.baseline import budgeted_config, decide, trial_workers
from worker.launchers import Launcher, RunSpec, confine, create_launcher
from worker.locks import run_lock
from worker.watcher import tail

log = logging.getLogger(__name__)


def spec_for(run: Run, resume: bool = False) -> RunSpec:
    """The launch description of a run; ValueError names the field when the stored config or resources are bad."""
    run_dir = confine(run.run_dir, get_settings().runs_dir)
    try:
        cfg = ExperimentConfig.model_validate(run.config)
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc, f"run {run.id} config")) from None
    try:
        # resources come from the launch form: validated by the same schema as the YAML file.
        launcher = LauncherConfig.model_validate({**cfg.launcher.model_dump(), **(run.resources or {})})
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc, f"run {run.id} resources")) from None
    return RunSpec(run_id=run.id, run_dir=run_dir, config=cfg, launcher=launcher, resume=resume)


def handle_of(run: Run) -> str | None:
    return run.job_id or (str(run.pid) if run.pid else None)


def set_status(session: Session, run: Run, status: str, **fields) -> bool:
    """Move the run on, unless it already is there; False (and the fresh row in `run`) when another writer won."""
    if run.status == status and all(getattr(run, k) == v for k, v in fields.items()):
        return True
    try:
        crud.set_run_status(session, run.id, status, **fields)
        ok = True
    except crud.Conflict as exc:
        session.rollback()
        log.info("run %s: %s", run.id, exc)
        ok = False
    session.refresh(run)
    return ok


def launch(run_id: int) -> str:
    """Start a queued run; a run that is not queued (launched already, cancelled) is left as it is."""
    with run_lock(run_id), session_scope() as session:
        run = crud.get_run(session, run_id)
        if run.status != RunStatus.queued:
            return run.status
        if not _release_baseline(session, run):
            return run.status
        submit(session, run, resume=run.attempt > 1)
        return run.status


def _release_baseline(session: Session, run: Run) -> bool:
    """True when the run may start now. A random baseline waits (queued, the reconcile sweep asks again) until
    its search succeeded, then starts with the search's measured compute as its budget and one trial worker per
    process of the search; a failed or cancelled search cancels it."""
    decision = decide(session, run)
    if decision is None:
        return True
    if decision.action == "wait":
        set_status(session, run, RunStatus.queued, status_reason=decision.reason)
        return False
    if decision.action in ("cancel", "fail"):
        set_status(session, run, RunStatus.cancelled if decision.action == "cancel" else RunStatus.failed, status_reason=decision.reason)
        return False
    run.config = budgeted_config(run.config, decision.compute)
    run.resources = trial_workers(run.resources or {}, decision.compute.processes)
    run.status_reason = decision.reason
    session.add(run)
    session.commit()
    session.refresh(run)
    return True


def submit(session: Session, run: Run, resume: bool, attempt: int | None = None) -> None:
    """Write config.yaml and hand the run to its launcher (adopting a live job of the run if there is one)."""
    try:
        spec = spec_for(run, resume=resume)
        settings = get_settings()
        if spec.config.data.path is not None:  # again before starting: roots may have narrowed or a link moved
            confine_data_path(spec.config.data.path, settings.data_roots, base=spec.run_dir)
        if spec.config.space.init_from is not None:  # likewise a partial search's checkpoint (data roots or runs)
            confine_data_path(spec.config.space.init_from, [*settings.data_roots, settings.runs_dir], base=spec.run_dir,
                              field="space.init_from")
        launcher = create_launcher(run.launcher)
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        write_config(RunDir(spec.run_dir).config, run.config, overrides_for(session, run))
        found = launcher.find(spec)
        handle = found or launcher.submit(spec)
    except Exception as exc:  # a refused sbatch or a bad config ends the run with the reason, not the worker
        log.warning("run %s could not be launched: %s", run.id, exc)
        set_status(session, run, RunStatus.failed, status_reason=f"launch failed: {exc}"[:2000])
        return
    fields = {"job_id": handle, "pid": None} if launcher.kind == "slurm" else {"pid": int(handle), "job_id": None}
    reason = f"adopted the live job {handle}" if found else f"{launcher.kind} job {handle}" + (" (resumed)" if resume else "")
    if attempt is not None:
        fields["attempt"] = attempt
    # SLURM counts its own requeues of a job from 0; the attempt this job started at turns them into ours.
    LaunchRecord(handle=handle, attempt=attempt or run.attempt).write(RunDir(spec.run_dir).launch_record)
    if not set_status(session, run, RunStatus.submitted, status_reason=reason, **fields):
        # Cancelled while we submitted: the job must not outlive the run.
        launcher.cancel(handle, spec)


def overrides_for(session: Session, run: Run) -> RunOverrides:
    """The `run:` overrides of the run's config.yaml. A hand-designed baseline gets its network; a retrain run its
    genotype: the one stored on the run, else its parent's genotype.json (then stored, so a resumed attempt
    retrains the same cell)."""
    if run.kind != "retrain":
        return RunOverrides(kind=run.kind, baseline_of=run.baseline_of, network=run.network)
    genotype = run.genotype
    if genotype is None:
        parent = session.get(Run, run.parent_run_id) if run.parent_run_id is not None else None
        if parent is None:
            raise ValueError(f"retrain run {run.id} has neither a genotype nor a parent run to take one from")
        path = RunDir(confine(parent.run_dir, get_settings().runs_dir)).genotype
        genotype = read_json(path)
        if genotype is None:
            raise ValueError(f"parent run {parent.id} has no genotype yet ({path} does not exist: its decode stage "
                             "has not run); retrain it once it has one")
        Genotype.from_dict(genotype, where=str(path))
        run.genotype = genotype
        session.add(run)
        session.commit()
        session.refresh(run)
    return RunOverrides(kind="retrain", parent_run_id=run.parent_run_id, genotype=genotype)


def cancel(run_id: int) -> str:
    """Cancel the run in the database and end its job; an ended run stays as it ended."""
    with run_lock(run_id), session_scope() as session:
        run = crud.get_run(session, run_id)
        if run.status not in TERMINAL_STATUSES:
            set_status(session, run, RunStatus.cancelled, status_reason="cancelled by user")
        handle = handle_of(run)
        if run.status != RunStatus.cancelled or handle is None:
            return run.status
        try:
            spec = spec_for(run)
        except ValueError:
            return run.status  # never launched: nothing runs
        kill(create_launcher(run.launcher), handle, spec)
        tail(session, run, spec.run_dir)
        return run.status


def kill(launcher: Launcher, handle: str, spec: RunSpec) -> None:
    try:
        launcher.cancel(handle, spec)
    except Exception as exc:
        log.warning("run %s: cancelling %s job %s failed: %s", spec.run_id, launcher.kind, handle, exc)


def base_attempt(run: Run, run_dir: Path) -> int:
    """The run's attempt when its current job was submitted (SLURM restarts of that job come on top)."""
    record = LaunchRecord.read(RunDir(run_dir).launch_record)
    return record.attempt if record is not None and record.handle == handle_of(run) else 1

