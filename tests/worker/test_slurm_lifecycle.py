"""Runs on the real single-node SLURM dev cluster through a real Celery worker: succeed, cancel, scancel, requeue."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from celery import Celery

from tests.worker.conftest import file_seqs, get_run, make_run, stored_seqs, wait_for, wait_status

pytestmark = pytest.mark.slurm


def _send(redis_url: str, name: str, run_id: int) -> None:
    client = Celery("nasforge-test", broker=redis_url)
    client.send_task(name, args=[run_id])
    client.close()


def _slurm(env: dict, *argv: str) -> str:
    out = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"{argv}: {out.stderr}"
    return out.stdout


# An sbatch run to succeeded, by the real search on 2 tasks under srun: tests/worker/test_discrete_mpi.py. The tests
# below keep the stand-in (tests/worker/fake_search.py): they cancel, scancel and requeue a run paced to 0.1 s.


def test_cancel_pending_and_running_jobs_and_detect_an_external_scancel(slurm_home, celery_worker):
    env, senv = slurm_home["env"], slurm_home["slurm_env"]
    celery_worker(env)
    cpus = int(_slurm(senv, "sinfo", "-h", "-o", "%c").split()[0])
    whole_node = {"slurm": {"cpus_per_task": cpus}}
    running = make_run(launcher="slurm", epochs=300, fake={"step_s": 0.2}, resources=whole_node)
    pending = make_run(launcher="slurm", epochs=1, resources=whole_node)
    _send(env["REDIS_URL"], "nasforge.launch_run", running)
    wait_status(running, "running", timeout=90)
    _send(env["REDIS_URL"], "nasforge.launch_run", pending)
    wait_status(pending, "pending", timeout=60)
    # The scheduler's own reason, as squeue shows it, once it has looked at the job.
    wait_for(lambda: get_run(pending).status_reason in ("Resources", "Priority"), 30, what="a pending reason")

    _send(env["REDIS_URL"], "nasforge.cancel_run", pending)
    wait_status(pending, "cancelled", timeout=60)
    _send(env["REDIS_URL"], "nasforge.cancel_run", running)
    wait_status(running, "cancelled", timeout=60)
    for run_id in (pending, running):
        job = get_run(run_id).job_id
        wait_for(lambda: "JobState=CANCELLED" in _slurm(senv, "scontrol", "show", "job", job), 30,
                 what=f"job {job} cancelled in SLURM")
    assert get_run(running).status_reason == "cancelled by user"

    outside = make_run(launcher="slurm", epochs=300, fake={"step_s": 0.2})
    _send(env["REDIS_URL"], "nasforge.launch_run", outside)
    run = wait_status(outside, "running", timeout=90)
    _slurm(senv, "scancel", run.job_id)  # not through nasforge
    run = wait_status(outside, {"cancelled", "failed", "succeeded"}, timeout=60)
    assert run.status == "cancelled" and "outside nasforge" in run.status_reason


def test_requeued_job_resumes_from_its_checkpoint(slurm_home, celery_worker):
    env, senv = slurm_home["env"], slurm_home["slurm_env"]
    celery_worker(env)
    run_id = make_run(launcher="slurm", epochs=14, fake={"step_s": 0.25})
    _send(env["REDIS_URL"], "nasforge.launch_run", run_id)
    run = wait_status(run_id, "running", timeout=90)
    ckpt = os.path.join(run.run_dir, "checkpoints", "last.json")
    wait_for(lambda: os.path.exists(ckpt) and json.load(open(ckpt))["step"] >= 3, 60, what="checkpoint at step 3")
    # A real preemption needs a second node or a higher-priority job; on one node `scontrol requeue` is what a
    # preempting scheduler does to the job (kill it, put it back in the queue with its restart count raised).
    _slurm(senv, "scontrol", "requeue", run.job_id)
    run = wait_status(run_id, {"preempted", "pending"}, timeout=60)
    assert run.attempt == 2
    # The dev cluster holds a requeued job back by a BeginTime of about two minutes; let it start now.
    _slurm(senv, "scontrol", "update", f"JobId={run.job_id}", "StartTime=now")
    run = wait_status(run_id, {"succeeded", "failed"}, timeout=120)
    assert run.status == "succeeded", run.status_reason
    assert run.attempt == 2
    seqs = file_seqs(run.run_dir)
    assert stored_seqs(run_id) == seqs == list(range(1, len(seqs) + 1)), "no event lost or doubled"
    starts = [json.loads(l)["payload"] for l in open(os.path.join(run.run_dir, "events.jsonl"))
              if '"kind":"status"' in l and '"running"' in l]
    assert len(starts) == 2 and starts[1]["resumed_from"] >= 3, "the requeued job continued from its checkpoint"
    log = open(os.path.join(run.run_dir, "stderr.log")).read()
    assert "restart 0" in log and "restart 1" in log, "both attempts appended to the same stderr.log"
