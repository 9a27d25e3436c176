"""A real Celery worker process that answers the backend's task names without running searches.

The backend is tested here, not worker/ (its own tests drive the real tasks): these tasks only record that the
message arrived, so health sees a live worker and launches are consumed.
"""
import os

from celery import Celery

app = Celery("nasforge-stub", broker=os.environ["REDIS_URL"])


@app.task(name="nasforge.launch_run")
def launch_run(run_id: int) -> int:
    return run_id


@app.task(name="nasforge.cancel_run")
def cancel_run(run_id: int) -> int:
    return run_id
