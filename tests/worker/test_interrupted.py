"""Stopping the platform while a multi-process run is active: mpirun answers the platform's SIGTERM with exit code 1,
the runner records that it was signalled, and the run is requeued with --resume on the next start, never failed."""
from __future__ import annotations

import json
import shutil
import sys
import time

import pytest

from deploy.platform import _stop_local_runs
from nas_core.rundir import ExitRecord, LocalRecord, RunDir
from tests._home import clear_settings_caches
from tests.worker.conftest import get_run, make_run, wait_for
from worker import control
from worker.launchers import create_launcher
from worker.reconcile import reconcile

pytestmark = pytest.mark.mpi

# Each rank waits to be stopped: what is under test is how the group's end is recorded, not the search.
_RANK = "import os, time\nopen(f'rank-{os.getpid()}', 'w').close()\ntime.sleep(600)\n"


@pytest.fixture
def ranks_command(worker_home, tmp_path, monkeypatch):
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not found (OpenMPI: scripts/install-system.sh)")
    script = tmp_path / "rank.py"
    script.write_text(_RANK)
    # `search_argv` appends `search config.yaml --run-dir . [--resume]`; the rank ignores them.
    monkeypatch.setenv("NASFORGE_SEARCH_COMMAND", json.dumps([sys.executable, str(script)]))
    clear_settings_caches()
    yield
    clear_settings_caches()


def test_platform_stop_of_an_mpirun_run_is_an_interruption_requeued_with_resume(ranks_command, worker_home):
    run_id = make_run(resources={"processes": 2})
    assert control.launch(run_id) == "submitted"
    run = get_run(run_id)
    rd = RunDir(run.run_dir)
    assert "mpirun" in " ".join(LocalRecord.read(rd.local_record).argv)
    wait_for(lambda: len(list(rd.root.glob("rank-*"))) == 2, 60, what="both ranks started")

    _stop_local_runs(rd.root.parent, grace_s=20)  # what Ctrl-C on `make run` does to every local run

    record = ExitRecord.read(rd.exit_record)
    assert record is not None and record.pid == run.pid, "the runner wrote its record before it exited"
    assert record.returncode != 0 and record.signal is None, "mpirun exits with a code, not by the signal"
    assert record.interrupted_by == 15, "the runner says its group was sent SIGTERM"
    js = create_launcher("local").state(str(run.pid), control.spec_for(run))
    assert js.state == "PREEMPTED" and "SIGTERM" in js.reason, js

    # The next start's first sweep: requeued with --resume as attempt 2, never failed.
    deadline = time.monotonic() + 30
    while get_run(run_id).attempt < 2 and time.monotonic() < deadline:
        reconcile()
        time.sleep(0.2)
    run = get_run(run_id)
    assert run.status in ("submitted", "running") and run.attempt == 2, (run.status, run.status_reason)
    assert LocalRecord.read(rd.local_record).resume is True
    assert "--resume" in LocalRecord.read(rd.local_record).argv
    control.cancel(run_id)
    assert get_run(run_id).status == "cancelled"
