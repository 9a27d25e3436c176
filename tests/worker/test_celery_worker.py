"""The real Celery worker process: tasks sent by name as the backend sends them, and a worker killed with -9."""
from __future__ import annotations

import os
import signal

from celery import Celery

from tests.worker.conftest import file_seqs, get_run, make_run, published_seqs, stored_seqs, wait_for, wait_status


def _send(redis_url: str, name: str, run_id: int) -> None:
    # As backend/core/bridge.py does: by name, never importing worker/.
    client = Celery("nasforge-test", broker=redis_url)
    client.send_task(name, args=[run_id])
    client.close()


# A launch task run to succeeded, by the real search (3 MPI ranks): tests/worker/test_discrete_mpi.py. The test below
# keeps the stand-in: it kills the worker at a known point of a run paced to the tenth of a second.


def test_worker_killed_mid_run_a_new_worker_resumes_watching(worker_home, celery_worker):
    env = worker_home["env"]
    first = celery_worker(env)
    run_id = make_run(epochs=30, fake={"step_s": 0.15})
    _send(env["REDIS_URL"], "nasforge.launch_run", run_id)
    wait_for(lambda: len(stored_seqs(run_id)) >= 6, 90, what="the first worker storing events")
    os.killpg(first.proc.pid, signal.SIGKILL)  # the worker and its pool, with no chance to clean up
    first.proc.wait(10)
    stored_when_killed = len(stored_seqs(run_id))
    run = get_run(run_id)
    assert run.status == "running"
    os.kill(run.pid, 0)  # the run's own process group outlives the worker
    celery_worker(env)
    run = wait_status(run_id, {"succeeded", "failed"}, timeout=120)
    assert run.status == "succeeded", run.status_reason
    seqs = file_seqs(run.run_dir)
    assert len(seqs) == 62 and len(stored_seqs(run_id)) > stored_when_killed
    assert stored_seqs(run_id) == seqs == list(range(1, 63)), "no event lost or stored twice"
    assert published_seqs(env["REDIS_URL"], run_id) == seqs, "each event published once to the SSE stream"
