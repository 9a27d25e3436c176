"""A node that fails mid-run, on the two-node dev cluster (issue 20), through the real Celery worker, the real SLURM
launcher and the real `nasforge search` at tiny size. The node the job runs on is powered off as far as one machine
can: every process in its network namespace (its slurmd, the job's slurmstepd, the search) is SIGKILLed at once.
SLURM sets the silent node DOWN after SlurmdTimeout (10 s on this cluster), ends the job NODE_FAIL and requeues it
(nasforge submits with --requeue); the requeued job runs on the surviving node and resumes from the checkpoint, and
the run's events are exact: none lost, none doubled. Root only (network namespaces); skipped saying so."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery

from tests._home import clear_settings_caches
from tests.worker.conftest import get_run, wait_for, wait_status
from tests.worker.test_slurm_faults import (_ENDED, _assert_complete_log, _checkpointed, _job, _release,
                                            _resumed_epochs, _run, _slurm)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

NASFORGE = str(Path(sys.executable).with_name("nasforge"))


@pytest.fixture
def two_node_worker(worker_home, slurm_two_nodes, celery_worker, monkeypatch):
    """A Celery worker that submits to the two-node cluster; yields (send, slurm environment)."""
    conf = slurm_two_nodes["env"]["SLURM_CONF"]
    monkeypatch.setenv("NASFORGE_SLURM_CONF", conf)
    clear_settings_caches()
    env = {**worker_home["env"], "NASFORGE_SLURM_CONF": conf, "NASFORGE_SEARCH_COMMAND": json.dumps([NASFORGE]),
           "OMP_NUM_THREADS": "1"}
    celery_worker(env)
    client = Celery("nasforge-test", broker=env["REDIS_URL"])
    yield (lambda run_id: client.send_task("nasforge.launch_run", args=[run_id])), slurm_two_nodes["env"]
    client.close()
    monkeypatch.undo()
    clear_settings_caches()
    slurm_two_nodes["start"]()  # the killed node's slurmd again, for the tests after this one


def _power_off(node: str) -> list[int]:
    """SIGKILL every process in the node's network namespace, all at once: its slurmd and whatever it runs."""
    pids = [int(p) for p in subprocess.run(["ip", "netns", "pids", node], capture_output=True, text=True,
                                           check=True).stdout.split()]
    assert pids, f"no process in {node}'s namespace"
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def test_a_failed_node_requeues_the_run_on_the_surviving_node_from_its_checkpoint(two_node_worker):
    send, senv = two_node_worker
    run_id = _run("fault-node-fail", 40, max_restarts=2)
    send(run_id)
    wait_for(lambda: _checkpointed(run_id), 120, every=0.5, what="the first checkpoint")
    run = get_run(run_id)
    job = run.job_id
    failed = _job(senv, job)["NodeList"]
    assert failed in ("nfnode1", "nfnode2"), failed
    survivor = {"nfnode1": "nfnode2", "nfnode2": "nfnode1"}[failed]
    _power_off(failed)

    wait_for(lambda: _job(senv, job).get("JobState") in ("NODE_FAIL", "REQUEUED", "PENDING"), 60, every=0.5,
             what=f"SLURM to find {failed} dead and end job {job}")
    assert "down" in _slurm(senv, "sinfo", "-h", "-n", failed, "-o", "%T"), "the node is DOWN"
    run = wait_status(run_id, {"preempted", "pending"}, timeout=60)
    assert run.attempt == 2, "SLURM requeued the job from the failed node: the run's second attempt"
    _release(senv, job)
    run = wait_status(run_id, _ENDED, timeout=240)
    assert run.status == "succeeded", run.status_reason
    assert _job(senv, job)["NodeList"] == survivor, "the second attempt ran on the node that survived"
    starts = [line for line in Path(run.run_dir, "stderr.log").read_text().splitlines()
              if line.startswith(f"nasforge: run {run_id} job {job} restart")]
    assert starts[0].endswith(f"restart 0 on {failed}") and starts[-1].endswith(f"restart 1 on {survivor}"), starts
    assert _resumed_epochs(run.run_dir)[-1] >= 1, "the second attempt continued from the first one's checkpoint"
    _assert_complete_log(run)
