"""Scheduler states the single-node dev cluster cannot produce, fed to the reconciler by a stub launcher (each test
says why); TIMEOUT, FAILED, OUT_OF_MEMORY, PREEMPTED, a node set DOWN and an outside scancel are real, in
test_slurm_faults.py. Everything else is real here too: the database, Redis, the run directory, the event log."""
from __future__ import annotations

from pathlib import Path

import pytest

from backend import crud
from backend.core.db import session_scope
from nas_core.events import EventLog
from tests.worker.conftest import get_run, make_run
from worker import reconcile as reconcile_mod
from worker.launchers import JobState, Launcher


class StubScheduler(Launcher):
    kind = "slurm"

    def __init__(self, states: list[JobState]):
        self.states = list(states)
        self.submitted: list[bool] = []
        self.cancelled: list[str] = []

    def submit(self, spec):
        self.submitted.append(spec.resume)
        return str(100 + len(self.submitted))

    def find(self, spec):
        return None

    def state(self, handle, spec, known=None):
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def cancel(self, handle, spec):
        self.cancelled.append(handle)


@pytest.fixture
def stub(monkeypatch, worker_home):
    def install(*states: JobState) -> StubScheduler:
        sched = StubScheduler(list(states))
        monkeypatch.setattr(reconcile_mod, "create_launcher", lambda kind: sched)
        monkeypatch.setattr("worker.control.create_launcher", lambda kind: sched)
        return sched

    return install


def _submitted_run(sched: StubScheduler, max_restarts: int = 2, events: list[tuple[str, dict]] = ()) -> int:
    from worker import control

    run_id = make_run(launcher="slurm", resources={"max_restarts": max_restarts})
    control.launch(run_id)
    run = get_run(run_id)
    with EventLog(Path(run.run_dir) / "events.jsonl") as log:
        for kind, payload in events:
            log.append(kind, payload)
    return run_id


def _sync(run_id: int) -> str:
    with session_scope() as s:
        return reconcile_mod.sync_run(s, crud.get_run(s, run_id))


def test_node_fail_that_slurm_did_not_requeue_is_resubmitted_up_to_max_restarts(stub):
    # Why a stub: the launcher always submits with --requeue, so on the dev cluster a failed node's job comes back
    # as PENDING with its restart count raised (test_slurm_faults.py). A bare NODE_FAIL is what a site with
    # JobRequeue=0 reports; nasforge then submits the job again itself.
    sched = stub(JobState("RUNNING"), JobState("NODE_FAIL", reason="node c042 did not respond"))
    run_id = _submitted_run(sched, max_restarts=1, events=[("status", {"state": "running"})])
    assert _sync(run_id) == "running"
    assert _sync(run_id) == "submitted"
    run = get_run(run_id)
    assert run.attempt == 2 and run.job_id == "102" and sched.submitted == [False, True]
    assert _sync(run_id) == "failed", "a second node failure exceeds max_restarts=1"
    assert "gave up after 1 restarts" in get_run(run_id).status_reason and len(sched.submitted) == 2


def test_a_job_slurm_forgot_ends_as_its_event_log_says(stub):
    # Why a stub: the controller forgets an ended job only after MinJobAge (300 s on the dev cluster, which other
    # tests need so that `scontrol show job` still answers after a job ended).
    sched = stub(JobState("LOST", reason="SLURM has no record of job 101"))
    ok = _submitted_run(sched, events=[("status", {"state": "succeeded"})])
    assert _sync(ok) == "succeeded"
    bad = _submitted_run(sched, events=[("status", {"state": "failed", "error": "loss is NaN at step 12"})])
    assert _sync(bad) == "failed" and "loss is NaN" in get_run(bad).status_reason
    silent = _submitted_run(sched, events=[("status", {"state": "running"})])
    assert _sync(silent) == "submitted" and get_run(silent).attempt == 2, "no word from the search: requeued"
