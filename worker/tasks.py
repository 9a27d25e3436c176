"""Celery tasks of the worker bridge (launch, cancel, watch, reconcile)."""
from __future__ import annotations

from worker.celery_app import app


@app.task(name="nasforge.ping")
def ping() -> str:
    return "pong"
