"""Brings the database in line with the scheduler and the process table: one run (`sync_run`), all of them
(`reconcile`), and the fast event sweep between them (`tail_active`).

Run by Celery beat every few seconds, so a restarted worker or API picks up every run where it was: it tails
each active run's event log, reads the job's state, and moves the run on (requeueing after a preemption).
Imports go one way: watcher (the log) <- control (launch, cancel) <- reconcile.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from sqlmodel import Session, col, select

from backend import crud
from backend.core.config import get_settings
from backend.core.db import session_scope
from backend.models import ACTIVE_STATUSES, Run, RunStatus, utcnow
from nas_core.events import FINAL_STATES, StatusState
from nas_core.rundir import RunDir
from worker.control import base_attempt, handle_of, launch, kill, set_status, spec_for, submit
from worker.launchers import ACTIVE, REQUEUE_STATES, JobState, confine, create_launcher
from worker.locks import run_lock
from worker.settings import get_worker_settings
from worker.watcher import last_status, silent_for, tail

log = logging.getLogger(__name__)
_RECENTLY_CANCELLED = dt.timedelta(minutes=10)
# Runs whose job may be writing events now (a queued run has no job yet).
_LIVE = ACTIVE_STATUSES - {RunStatus.queued}


def reconcile() -> dict[str, int]:
    """One sweep over every active run (and recently cancelled ones whose job may still be alive)."""
    settings = get_worker_settings()
    queued_grace = dt.timedelta(seconds=max(5.0, 2 * settings.reconcile_interval_s))
    now = utcnow()
    with session_scope() as session:
        rows = session.exec(select(Run.id, Run.status, Run.created_at, Run.launcher)
                            .where(col(Run.status).in_(ACTIVE_STATUSES)).order_by(col(Run.id))).all()
        cancelled = session.exec(select(Run.id).where(Run.status == RunStatus.cancelled, col(Run.finished_at) > now - _RECENTLY_CANCELLED)).all()
    kinds = {run_id: kind for run_id, _, _, kind in rows}
    counts = {"active": len(rows), "launched": 0, "synced": 0, "busy": 0, "errors": 0}
    snapshot = _slurm_snapshot() if any(kind == "slurm" for kind in kinds.values()) else {}
    for run_id, status, created, _ in rows:
        try:
            if status == RunStatus.queued:
                # The API's launch task may have been lost with a broker restart; launch is idempotent.
                if now - _aware(created) > queued_grace:
                    launch(run_id)
                    counts["launched"] += 1
                continue
            with run_lock(run_id, wait=0) as got:
                if not got:
                    counts["busy"] += 1
                    continue
                with session_scope() as session:
                    sync_run(session, crud.get_run(session, run_id), snapshot)
                counts["synced"] += 1
        except Exception:
            counts["errors"] += 1
            log.exception("reconcile: run %s", run_id)
    for run_id in cancelled:
        try:
            with run_lock(run_id, wait=0) as got, session_scope() as session:
                if got:
                    sync_run(session, crud.get_run(session, run_id))
        except Exception:
            log.exception("reconcile: cancelled run %s", run_id)
    return counts


def tail_active() -> dict[str, int]:
    """The fast path between reconciliations: store new events of every live run whose log has grown.

    One stat per run when nothing changed, so it can run every second or two; a run whose search wrote its
    final `status` is reconciled at once rather than at the next sweep.
    """
    counts = {"runs": 0, "events": 0, "finished": 0}
    with session_scope() as session:
        runs = session.exec(select(Run).where(col(Run.status).in_(_LIVE))).all()
        for run in runs:
            counts["runs"] += 1
            try:
                run_dir = confine(run.run_dir, get_settings().runs_dir)
                if RunDir(run_dir).events.stat().st_size <= run.log_offset:
                    continue
                counts["events"] += tail(session, run, run_dir)
                if (last_status(session, run.id) or {}).get("state") in FINAL_STATES:
                    with run_lock(run.id, wait=0) as got:
                        if got:
                            session.refresh(run)
                            sync_run(session, run)
                            counts["finished"] += 1
            except (OSError, ValueError):
                continue  # no log yet, or a run dir the reconciler will fail with its reason
            except Exception:
                session.rollback()
                log.exception("tail_active: run %s", run.id)
    return counts


def sync_run(session: Session, run: Run, snapshot: dict[str, dict[str, str]] | None = None) -> str:
    """Read the job's state, store new events, and move the run to the status they imply. Returns the status.

    `snapshot`: the scheduler's listing taken once for a whole sweep (`Launcher.snapshot`)."""
    handle = handle_of(run)
    if run.status == RunStatus.queued or handle is None:
        return run.status
    try:
        spec = spec_for(run)
    except ValueError as exc:
        set_status(session, run, RunStatus.failed, status_reason=str(exc)[:2000])
        return run.status
    launcher = create_launcher(run.launcher)
    js = launcher.state(handle, spec, known=(snapshot or {}).get(handle) if launcher.kind == "slurm" else None)
    # After the state: a job seen ended has written its whole log, so nothing is left behind unread.
    tail(session, run, spec.run_dir)
    session.refresh(run)
    if run.status == RunStatus.cancelled:
        if js.state in ACTIVE:
            kill(launcher, handle, spec)
        return run.status
    if run.status not in ACTIVE_STATUSES:
        return run.status
    max_restarts = spec.launcher.max_restarts
    attempt = base_attempt(run, spec.run_dir) + js.restarts
    if attempt > run.attempt:
        # SLURM requeued the job itself (preemption, node failure, `scontrol requeue`).
        reason = f"requeued by SLURM (restart {attempt - 1} of at most {max_restarts})"
        if attempt - 1 > max_restarts:
            kill(launcher, handle, spec)
            set_status(session, run, RunStatus.failed, status_reason=f"gave up after {max_restarts} restarts", attempt=attempt)
            return run.status
        if js.state in ACTIVE:
            set_status(session, run, RunStatus.preempted, status_reason=reason, attempt=attempt)
        else:
            set_status(session, run, run.status, attempt=attempt)
    return _apply(session, run, js, spec, max_restarts)


def _apply(session: Session, run: Run, js: JobState, spec, max_restarts: int) -> str:
    settings = get_worker_settings()
    if js.state == "PENDING":
        set_status(session, run, RunStatus.pending, status_reason=js.reason or "waiting for resources")
    elif js.state == "RUNNING":
        silent = silent_for(run, spec.run_dir)
        if run.status in (RunStatus.submitted, RunStatus.pending, RunStatus.preempted):
            set_status(session, run, RunStatus.running, status_reason="")
        elif silent > settings.stale_after_s:
            set_status(session, run, RunStatus.stale, status_reason=f"no event or heartbeat for {silent:.0f} s "
                                                            f"(stale after {settings.stale_after_s:.0f} s); still running")
        elif run.status == RunStatus.stale:
            set_status(session, run, RunStatus.running, status_reason="")
    elif js.state == "COMPLETED":
        _finish(session, run, js, spec)
    elif js.state == "FAILED":
        _finish(session, run, js, spec)
    elif js.state == "TIMEOUT":
        set_status(session, run, RunStatus.failed, status_reason=f"TIMEOUT: the job reached its time limit ({spec.launcher.slurm.time})")
    elif js.state == "CANCELLED":
        set_status(session, run, RunStatus.cancelled, status_reason="cancelled outside nasforge (scancel or a signal to the job)")
    elif js.state in REQUEUE_STATES:
        said = last_status(session, run.id) or {}
        if js.state == "LOST" and said.get("state") in FINAL_STATES:
            _finish(session, run, js, spec)
        elif run.attempt > max_restarts:
            set_status(session, run, RunStatus.failed, status_reason=f"{js.state}: {js.reason}; gave up after {max_restarts} restarts"[:2000])
        elif set_status(session, run, RunStatus.preempted, status_reason=f"{js.state}: {js.reason}; requeued from the last checkpoint"[:2000]):
            submit(session, run, resume=True, attempt=run.attempt + 1)
    return run.status


def _finish(session: Session, run: Run, js: JobState, spec) -> None:
    """An ended job: the search's last `status` event is its own word; the exit code decides when it left none."""
    said = last_status(session, run.id) or {}
    if said.get("state") == StatusState.failed or (js.state == "FAILED" and said.get("state") != StatusState.succeeded):
        reason = said.get("error") or js.reason or "the search failed"
        tail_lines = _stderr_tail(spec.run_dir)
        set_status(session, run, RunStatus.failed, status_reason=(f"{reason}\n{tail_lines}" if tail_lines else str(reason))[:2000])
    else:
        set_status(session, run, RunStatus.succeeded, status_reason="", progress=1.0)


def _stderr_tail(run_dir: Path, lines: int = 5) -> str:
    try:
        with open(RunDir(run_dir).stderr, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 4096))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join([ln for ln in text.splitlines() if ln.strip()][-lines:])


def _slurm_snapshot() -> dict[str, dict[str, str]]:
    try:
        return create_launcher("slurm").snapshot()
    except Exception:
        log.exception("reconcile: squeue listing failed; reading each job on its own")
        return {}


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
