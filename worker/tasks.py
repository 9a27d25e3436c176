"""Celery tasks of the worker bridge, keyed by run id and safe to repeat: launch, cancel, watch, reconcile, and
the sensitivity of a finished run.

The backend sends them by name (`send_task("nasforge.launch_run", args=[run_id])`) and never imports worker/.
"""
from __future__ import annotations

from backend import crud
from backend.core.bridge import SENSITIVITY_TASK
from backend.core.db import session_scope
from worker import control, reconcile as _reconcile, sensitivity as _sensitivity
from worker.celery_app import app
from worker.locks import run_lock


@app.task(name="nasforge.launch_run")
def launch_run(run_id: int) -> str:
    status = control.launch(int(run_id))
    watch_run.apply_async(args=[run_id], countdown=1)
    return status


@app.task(name="nasforge.cancel_run")
def cancel_run(run_id: int) -> str:
    return control.cancel(int(run_id))


@app.task(name="nasforge.watch_run")
def watch_run(run_id: int) -> str:
    """One pass for one run (events, state); the periodic reconcile makes the passes that follow."""
    with run_lock(int(run_id), wait=0) as got:
        with session_scope() as session:
            run = crud.get_run(session, int(run_id))
            return _reconcile.sync_run(session, run) if got else run.status


@app.task(name="nasforge.reconcile")
def reconcile() -> dict[str, int]:
    return _reconcile.reconcile()


@app.task(name="nasforge.tail_active")
def tail_active() -> dict[str, int]:
    return _reconcile.tail_active()


@app.task(name="nasforge.ping")
def ping() -> str:
    return "pong"


@app.task(name=SENSITIVITY_TASK)
def sensitivity(run_id: int) -> str:
    """Where to search first on a finished hand-designed run: start the command, then follow it until it ends
    (worker/sensitivity.py); neither holds the worker while the network is measured."""
    state, wait = _sensitivity.start(int(run_id))
    if wait:
        follow_sensitivity.apply_async(args=[run_id], countdown=wait)
    return state


@app.task(name="nasforge.follow_sensitivity")
def follow_sensitivity(run_id: int) -> str:
    state, wait = _sensitivity.follow(int(run_id))
    if wait:
        follow_sensitivity.apply_async(args=[run_id], countdown=wait)
    return state
