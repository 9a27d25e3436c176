"""The worker on the two-node dev cluster (issue 20): the real Celery worker, the real SLURM launcher and the real
`nasforge search` at tiny size, with each slurmd in a network and UTS namespace of its own (tests/conftest.py
`slurm_two_nodes`). Root only (network namespaces); skipped saying so.

A discrete search of 2 nodes x 2 tasks: the orchestrator (rank 0) and trial rank 1 on nfnode1, ranks 2 and 3 on
nfnode2, one MPI world over the nodes' network (srun --mpi=pmix); every trial is trained once, on both nodes, and the
database holds exactly the log.

A node that fails mid-run. The node the job runs on is powered off as far as one machine can: every process in its network namespace (its slurmd, the job's slurmstepd, the search) is SIGKILLed at once.
SLURM sets the silent node DOWN after SlurmdTimeout (10 s on this cluster), ends the job NODE_FAIL and requeues it
(nasforge submits with --requeue); the requeued job runs on the surviving node and resumes from the checkpoint, and
the run's events are exact: none lost, none doubled. When the survivor fails too, one restart more than
launcher.max_restarts allows, the run fails saying so and its job leaves the queue."""
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
from tests.worker.conftest import file_seqs, get_run, stored_seqs, wait_for, wait_status
from tests.worker.test_discrete_mpi import _events, _experiment, _queue, _trained_once_by_trial_ranks
from tests.worker.test_slurm_faults import (_ENDED, _assert_complete_log, _checkpointed, _job, _release,
                                            _resumed_epochs, _run, _slurm)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

NASFORGE = str(Path(sys.executable).with_name("nasforge"))


# The cluster profile of this cluster: OpenMPI over the nodes' eth0, one thread per rank on 2 cores.
PROFILE = {"environment": {"OMPI_MCA_btl": "self,tcp", "OMPI_MCA_btl_tcp_if_include": "eth0",
                           "OMPI_MCA_oob_tcp_if_include": "eth0", "OMP_NUM_THREADS": "1"}}


@pytest.fixture
def two_node_worker(worker_home, slurm_two_nodes, celery_worker, monkeypatch, tmp_path):
    """A Celery worker that submits to the two-node cluster; yields (send, slurm environment)."""
    conf = slurm_two_nodes["env"]["SLURM_CONF"]
    profile = tmp_path / "profile.yaml"
    profile.write_text(json.dumps(PROFILE))
    monkeypatch.setenv("NASFORGE_SLURM_CONF", conf)
    clear_settings_caches()
    env = {**worker_home["env"], "NASFORGE_SLURM_CONF": conf, "NASFORGE_SEARCH_COMMAND": json.dumps([NASFORGE]),
           "NASFORGE_SLURM_PROFILE": str(profile), "OMP_NUM_THREADS": "1"}
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


def test_a_discrete_search_spans_the_nodes_and_trains_every_trial_once(two_node_worker):
    pytest.importorskip("mpi4py", reason="mpi4py is not installed: pip install 'nasforge[mpi]'")
    send, senv = two_node_worker
    run_id = _queue(_experiment(3, kind="slurm", slurm={"nodes": 2, "tasks_per_node": 2, "time": "00:10:00"}))
    send(run_id)
    run = wait_status(run_id, _ENDED, timeout=240)
    logs = "".join((Path(run.run_dir) / f).read_text() for f in ("stdout.log", "stderr.log")
                   if (Path(run.run_dir) / f).exists())
    assert run.status == "succeeded", f"{run.status_reason}\n{logs[-3000:]}"
    script = (Path(run.run_dir) / "job.sbatch").read_text()
    assert "exec srun --kill-on-bad-exit=1 --mpi=pmix " in script, "mpi4py under srun needs PMIx here"
    assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=2" in script and "--resume" in script
    assert _job(senv, run.job_id)["JobName"] == f"nasforge-run-{run_id}"
    events = _events(run.run_dir)
    final = [e["payload"] for e in events if e["kind"] == "candidate" and e["payload"]["final"]]
    placed = {c["worker"]: c["host"] for c in final}
    _trained_once_by_trial_ranks(events, 3, set(placed))
    # SLURM's block distribution: rank 1 beside the orchestrator, ranks 2 and 3 on the other node.
    assert set(placed) <= {1, 2, 3} and set(placed.values()) == {"nfnode1", "nfnode2"}, placed
    assert all(host == ("nfnode1" if rank == 1 else "nfnode2") for rank, host in placed.items()), placed
    assert stored_seqs(run_id) == file_seqs(run.run_dir), "the database holds exactly the log"
    assert events[-1]["payload"]["state"] == "succeeded"


def test_a_failed_node_requeues_the_run_on_the_surviving_node_from_its_checkpoint(two_node_worker):
    send, senv = two_node_worker
    run_id = _run("fault-node-fail", 40, max_restarts=1)
    send(run_id)
    wait_for(lambda: _checkpointed(run_id), 120, every=0.5, what="the first checkpoint")
    job = get_run(run_id).job_id
    failed = _job(senv, job)["NodeList"]
    assert failed in ("nfnode1", "nfnode2"), failed
    survivor = {"nfnode1": "nfnode2", "nfnode2": "nfnode1"}[failed]
    _power_off(failed)

    wait_for(lambda: int(_job(senv, job).get("Restarts", "0")) == 1, 60, every=0.5,
             what=f"SLURM to find {failed} dead and requeue job {job}")
    assert "down" in _slurm(senv, "sinfo", "-h", "-n", failed, "-o", "%T"), "the silent node is DOWN"
    run = wait_status(run_id, {"preempted", "pending"}, timeout=60)
    assert run.attempt == 2, "SLURM requeued the job from the failed node: the run's second attempt"
    _release(senv, job)
    wait_status(run_id, "running", timeout=60)
    assert _job(senv, job)["NodeList"] == survivor, "the second attempt runs on the node that survived"
    metrics = sum('"kind":"metric"' in line for line in Path(run.run_dir, "events.jsonl").read_text().splitlines())
    wait_for(lambda: _checkpointed(run_id, after=metrics), 120, every=0.5, what="a checkpoint after the resume")
    assert _resumed_epochs(run.run_dir)[-1] >= 1, "the second attempt continued from the first one's checkpoint"
    starts = [line for line in Path(run.run_dir, "stderr.log").read_text().splitlines()
              if line.startswith(f"nasforge: run {run_id} job {job} restart")]
    assert starts[0].endswith(f"restart 0 on {failed}") and starts[-1].endswith(f"restart 1 on {survivor}"), starts

    _power_off(survivor)  # a second node failure is one restart more than max_restarts allows
    run = wait_status(run_id, _ENDED, timeout=90)
    assert run.status == "failed" and "gave up after 1 restarts" in run.status_reason, run.status_reason
    wait_for(lambda: _job(senv, job)["JobState"] in ("CANCELLED", "COMPLETED", "FAILED", "NODE_FAIL"), 30,
             what="the job ended, not left in the queue")
    _assert_complete_log(run)
