"""The Celery application of the worker bridge: broker, settings and the beat schedule. Tasks live in worker/tasks.py."""
from __future__ import annotations

import os

from celery import Celery

from worker.settings import get_worker_settings

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# How often beat reconciles every active run with its scheduler (and tails its events).
RECONCILE_S = get_worker_settings().reconcile_interval_s
# How often beat stores new events of live runs (the latency of the SSE streams); cheap when nothing changed.
WATCH_S = get_worker_settings().watch_interval_s

app = Celery("nasforge", broker=REDIS_URL, include=["worker.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    # A task is acknowledged only once done, and given back if its worker dies: no run is lost.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    beat_schedule={
        "nasforge-reconcile": {
            "task": "nasforge.reconcile",
            "schedule": RECONCILE_S,
            # A sweep that waited longer than one period is superseded by the next one: drop it.
            "options": {"expires": RECONCILE_S},
        },
        "nasforge-tail-active": {
            "task": "nasforge.tail_active",
            "schedule": WATCH_S,
            "options": {"expires": WATCH_S},
        },
    },
)
