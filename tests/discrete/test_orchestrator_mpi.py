"""The orchestrator under a real `mpirun` (OpenMPI, mpi4py): exactly-once trials, retries, a dead or hung
worker rank ending the job without a hang, and a restart that redoes only unfinished trials."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import candidate_events, finished_trials, starts
from nas_core.discrete import SearchJob
from nas_core.discrete.orchestrator import OrchestratorError, have_mpi, launch
from nas_core.events import read_events
from nas_core.mpi import mpirun_command

pytestmark = [pytest.mark.mpi, pytest.mark.skipif(not have_mpi(), reason="needs mpirun (OpenMPI) and mpi4py")]


def _job(tmp_path, **params) -> SearchJob:
    return SearchJob(workdir=str(tmp_path / "search"), method="evolution", trials=16, categorical=[4] * 6,
                     population=6, tournament=3, objective_params={"state_dir": str(tmp_path / "state"), **params})


def test_every_trial_once_and_failed_trials_retried_on_another_rank(tmp_path):
    job = _job(tmp_path, raise_on=[3], kill_on=[7], sleep_s=0.05)
    summary = launch(job, 4, timeout=120)
    assert summary["trials"] == 16 and summary["failed"] == 0 and summary["timing"]["workers"] == 3
    assert sorted(finished_trials(job.root)) == list(range(16))
    executed = sorted(t for t, _, _ in starts(tmp_path / "state"))
    assert executed == sorted(list(range(16)) + [3, 7])  # neither lost nor duplicated
    events = candidate_events(job.root)
    assert sorted(e["trial"] for e in events if e["final"]) == list(range(16))
    for t, status in ((3, "error"), (7, "killed")):
        first, second = [e for e in events if e["trial"] == t]
        assert (first["status"], first["final"], second["status"]) == (status, False, "ok")
        assert first["worker"] != second["worker"] and {first["worker"], second["worker"]} <= {1, 2, 3}


def test_killed_worker_rank_ends_the_job_and_restart_redoes_only_unfinished(tmp_path):
    job = _job(tmp_path, kill_worker_on=[5], sleep_s=0.1)
    t0 = time.monotonic()
    with pytest.raises(OrchestratorError, match=r"(?s)after \d+ of 16 trials.*launch again to resume.*rank \d"):
        launch(job, 4, timeout=90)
    assert time.monotonic() - t0 < 60  # ended, not hung until the timeout
    # Rank 0's own word names the rank that died and its trial (not mpirun's "rank N" of whatever it noticed).
    failed = [e for _, e in read_events(job.run_dir.events) if e["kind"] == "status"][-1]["payload"]
    assert failed["state"] == "failed", failed
    lost = re.match(r"trial worker rank (\d) \(pid (\d+) on .+\) died while running trial 5 ", failed["error"])
    assert lost, failed["error"]
    (killed,) = (tmp_path / "state").glob("killed-worker-5-*")  # the objective's note of the pid it killed
    assert lost.group(2) == killed.name.rsplit("-", 1)[1] and lost.group(1) in "123"
    done_before = set(finished_trials(job.root))
    assert 5 not in done_before and len(done_before) < 16
    runs_before = set(starts(tmp_path / "state"))
    summary = launch(job, 4, timeout=120)
    assert summary["trials"] == 16 and sorted(finished_trials(job.root)) == list(range(16))
    redone = {t for t, _, _ in set(starts(tmp_path / "state")) - runs_before}
    assert 5 in redone and not redone & done_before
    assert sorted(e["trial"] for e in candidate_events(job.root) if e["final"]) == list(range(16))


def test_hung_worker_rank_is_named_and_ends_the_job(tmp_path):
    # SIGSTOP: the rank neither works nor dies, so MPI never notices; only rank 0's silence check can.
    job = _job(tmp_path, stop_worker_on=[2], sleep_s=0.05).model_copy(update={"silent_worker_s": 2.0})
    t0 = time.monotonic()
    with pytest.raises(OrchestratorError, match=r"worker rank \d has been silent .* trial 2"):
        launch(job, 3, timeout=90)
    assert time.monotonic() - t0 < 60


def test_mpi_ranks_never_import_torch(tmp_path):
    job = _job(tmp_path)
    job = job.model_copy(update={"method": "random", "trials": 4})
    path = job.save()
    script = textwrap.dedent(f"""
        import sys
        from nas_core.discrete.orchestrator import main
        rc = main([{str(path)!r}])
        assert "torch" not in sys.modules, "an MPI rank imported torch"
        sys.exit(rc)
    """)
    proc = subprocess.run(mpirun_command(3, [sys.executable, "-c", script]), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(finished_trials(job.root)) == 4


def test_job_over_its_time_limit_is_stopped_without_leaving_ranks_behind(tmp_path):
    job = _job(tmp_path, sleep_s=30).model_copy(update={"trials": 4})
    with pytest.raises(OrchestratorError, match="did not finish within 3 s and was stopped"):
        launch(job, 3, timeout=3)
    time.sleep(1)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(job.root) not in ps  # mpirun and its ranks (their argv names the job) are gone


def test_prescreen_and_compute_budget_work_the_same_across_ranks(tmp_path):
    # Pre-screening: 8 candidates scored by the proxy on ranks 1-2, only the top 3 by it trained.
    job = SearchJob(workdir=str(tmp_path / "screen"), method="random", trials=3, prescreen=8, categorical=[4] * 6,
                    prescreen_proxy="monotone", objective_params={})
    summary = launch(job, 3, timeout=120)
    events = [e for e in candidate_events(job.root) if e["final"]]
    screened = [e for e in events if e["stage"] == "prescreen"]
    trained = [e for e in events if e["stage"] == "train"]
    top = sorted(screened, key=lambda e: -e["proxies"]["monotone"])[:3]
    assert sorted(map(str, (e["genotype"] for e in trained))) == sorted(map(str, (e["genotype"] for e in top)))
    assert summary["trials"] == 3 and {e["worker"] for e in events} <= {1, 2}
    # The budget counts worker-seconds over both trial ranks: ~0.3 s trials against 1.2 s stop well before 50.
    job = SearchJob(workdir=str(tmp_path / "budget"), method="random", trials=50, compute_budget_s=1.2,
                    categorical=[4] * 6, objective_params={"sleep_s": 0.3})
    summary = launch(job, 3, timeout=120)
    finished = finished_trials(job.root)
    spent = sum(r["finished"] - r["started"] for r in finished.values())
    assert summary["stopped_by"] == "compute_budget" and summary["compute_s"] == pytest.approx(spent)
    assert spent >= 1.2 and len(finished) < 12 and {r["worker"] for r in finished.values()} == {1, 2}
    # Each rank may have one trial running when the budget is reached: overshoot at most one trial per worker.
    assert spent - 1.2 < 2 * max(r["finished"] - r["started"] for r in finished.values())


def test_a_launcher_world_that_mpi_does_not_see_is_refused_not_run_as_independent_searches():
    # srun without a PMI plugin starts N copies that each see a world of 1: they must not each run the search.
    script = ("from nas_core.discrete.orchestrator import OrchestratorError, world\n"
              "try:\n    world()\nexcept OrchestratorError as exc:\n    print(exc)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI", "SLURM_"))}
    alone = subprocess.run([sys.executable, "-c", "from nas_core.discrete.orchestrator import world; print(world())"],
                           capture_output=True, text=True, timeout=60, env=env)
    assert alone.stdout.strip() == "None", "one process never initialises MPI"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env={**env, "SLURM_STEP_NUM_TASKS": "3"})
    assert "started as one of 3 processes (SLURM_STEP_NUM_TASKS=3), but MPI sees a world of 1" in out.stdout, out
