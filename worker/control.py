"""Launch and cancel of one run, keyed by run id and safe to repeat: the bodies of the Celery tasks."""
from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Iterator

import yaml
from pydantic import ValidationError
from sqlmodel import Session

from backend import crud
from backend.core.config import get_settings
from backend.core.db import session_scope
from backend.models import TERMINAL_STATUSES, Run
from nas_core.config import ExperimentConfig, LauncherConfig, format_validation_error
from nas_core.data.roots import confine_data_path
from worker.launchers import Launcher, RunSpec, confine, create_launcher
from worker.settings import get_worker_settings

log = logging.getLogger(__name__)


@contextlib.contextmanager
def run_lock(run_id: int, wait: float | None = 30.0) -> Iterator[bool]:
    """A per-run Redis lock so two workers never submit the same run; yields False when `wait=0` finds it taken.

    It expires on its own (NASFORGE_LOCK_TIMEOUT_S), so a worker killed while holding it blocks no one for long.
    """
    from backend.core.streams import get_redis

    lock = get_redis(get_settings().redis_url).lock(f"nasforge:lock:run:{int(run_id)}",
                                                     timeout=get_worker_settings().lock_timeout_s,
                                                     blocking=wait != 0, blocking_timeout=wait or None)
    got = lock.acquire()
    if not got and wait != 0:
        raise TimeoutError(f"run {run_id} is locked by another worker for more than {wait:.0f} s; the next "
                           "reconciliation will try again")
    try:
        yield got
    finally:
        if got:
            with contextlib.suppress(Exception):  # expired meanwhile: nothing to release
                lock.release()


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
        if run.status != "queued":
            return run.status
        if not _release_baseline(session, run):
            return run.status
        submit(session, run, resume=run.attempt > 1)
        return run.status


def _release_baseline(session: Session, run: Run) -> bool:
    """True when the run may start now. A random baseline waits (queued, the reconcile sweep asks again) until
    its search succeeded, then starts with the search's measured compute as its budget; a failed or cancelled
    search cancels it."""
    from worker.baseline import budgeted_config, decide, trial_workers

    decision = decide(session, run)
    if decision is None:
        return True
    if decision.action == "wait":
        set_status(session, run, "queued", status_reason=decision.reason)
        return False
    if decision.action in ("cancel", "fail"):
        set_status(session, run, "cancelled" if decision.action == "cancel" else "failed", status_reason=decision.reason)
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
        if spec.config.data.path is not None:  # again before starting: roots may have narrowed or a link moved
            confine_data_path(spec.config.data.path, get_settings().data_roots, base=spec.run_dir)
        launcher = create_launcher(run.launcher)
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        _write_config(spec.run_dir / "config.yaml", run.config)
        found = launcher.find(spec)
        handle = found or launcher.submit(spec)
    except Exception as exc:  # a refused sbatch or a bad config ends the run with the reason, not the worker
        log.warning("run %s could not be launched: %s", run.id, exc)
        set_status(session, run, "failed", status_reason=f"launch failed: {exc}"[:2000])
        return
    fields = {"job_id": handle, "pid": None} if launcher.kind == "slurm" else {"pid": int(handle), "job_id": None}
    reason = f"adopted the live job {handle}" if found else f"{launcher.kind} job {handle}" + (" (resumed)" if resume else "")
    if attempt is not None:
        fields["attempt"] = attempt
    # SLURM counts its own requeues of a job from 0; the attempt this job started at turns them into ours.
    _write_json(spec.run_dir / "launch.json", {"handle": handle, "attempt": attempt or run.attempt})
    if not set_status(session, run, "submitted", status_reason=reason, **fields):
        # Cancelled while we submitted: the job must not outlive the run.
        launcher.cancel(handle, spec)


def cancel(run_id: int) -> str:
    """Cancel the run in the database and end its job; an ended run stays as it ended."""
    from worker.watcher import tail

    with run_lock(run_id), session_scope() as session:
        run = crud.get_run(session, run_id)
        if run.status not in TERMINAL_STATUSES:
            set_status(session, run, "cancelled", status_reason="cancelled by user")
        handle = handle_of(run)
        if run.status != "cancelled" or handle is None:
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
    try:
        info = json.loads((run_dir / "launch.json").read_text())
        if str(info.get("handle")) == handle_of(run):
            return int(info["attempt"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return 1


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _write_config(path: Path, config: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, path)
