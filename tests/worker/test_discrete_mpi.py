"""A discrete search on several processes, for real: the worker launches the real `nasforge search` under
`mpirun -np 3` (under srun across two SLURM nodes: tests/worker/test_multinode_worker.py); rank 0 dispatches, ranks 1-2 train tiny candidates on
synthetic tiles. Every trial is trained once, by a trial rank; rank 0 alone writes the log, and the database holds
exactly it; a trial rank killed from outside is named by its own rank number."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from celery import Celery

from tests._home import clear_settings_caches
from tests.baseline.conftest import tiny_experiment
from tests.worker.conftest import drive as _drive, file_seqs, get_run, published_seqs, stored_seqs, wait_for, wait_status
from worker import control

NASFORGE = str(Path(sys.executable).with_name("nasforge"))
pytestmark = [pytest.mark.mpi, pytest.mark.slow]


@pytest.fixture
def real_search(worker_home, monkeypatch):
    """The worker tests' home, with the real search instead of the stand-in (it does not run several ranks)."""
    monkeypatch.setenv("NASFORGE_SEARCH_COMMAND", json.dumps([NASFORGE]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    clear_settings_caches()
    yield worker_home
    monkeypatch.undo()
    clear_settings_caches()


def _experiment(trials: int, **launcher) -> dict:
    cfg = tiny_experiment("random", trials=trials)
    cfg["data"] = {**cfg["data"], "num_tiles": 8}
    cfg["retrain"] = {"enabled": False}  # the trials are what is tested; rank 0's retrain is the one-process path's
    cfg["baseline"] = {"random": False}
    cfg["launcher"] = {"max_restarts": 0, **launcher}
    return cfg


def _queue(cfg: dict) -> int:
    from backend import crud
    from backend.core.db import session_scope
    from nas_core.config import ExperimentConfig

    with session_scope() as s:
        exp = crud.create_experiment(s, ExperimentConfig.model_validate(cfg), owner_id=None)
        run, _ = crud.launch(s, exp, baselines=False)
        return run.id


def _events(run_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "events.jsonl").read_text().splitlines()]


def _trained_once_by_trial_ranks(events: list[dict], trials: int, ranks: set[int]) -> None:
    final = [e["payload"] for e in events if e["kind"] == "candidate" and e["payload"]["final"]]
    assert sorted(c["trial"] for c in final) == list(range(trials)), "every trial exactly once"
    assert {c["worker"] for c in final} == ranks, "trained by the trial ranks, never rank 0"
    assert all(c["status"] == "ok" and c["finished"] > c["started"] > 0 for c in final)
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "one writer: seqs unique and strictly increasing"


def test_three_processes_through_the_celery_worker_train_every_trial_once_on_ranks_1_and_2(real_search, celery_worker):
    # The real Celery worker (with beat) launches and watches it, as in production.
    env = {**real_search["env"], "NASFORGE_SEARCH_COMMAND": json.dumps([NASFORGE]), "OMP_NUM_THREADS": "1"}
    celery_worker(env)
    run_id = _queue(_experiment(3, processes=3))
    client = Celery("nasforge-test", broker=env["REDIS_URL"])
    client.send_task("nasforge.launch_run", args=[run_id])
    client.close()
    run = wait_status(run_id, {"succeeded", "failed"}, timeout=240)
    assert run.status == "succeeded", run.status_reason
    assert run.progress == 1.0 and run.log_offset == os.path.getsize(os.path.join(run.run_dir, "events.jsonl"))
    assert published_seqs(env["REDIS_URL"], run_id) == file_seqs(run.run_dir), "each event once to the SSE stream"
    argv = json.loads((Path(run.run_dir) / "local.json").read_text())["argv"]
    assert Path(argv[0]).name == "mpirun" and argv[argv.index("-np") + 1] == "3", argv
    events = _events(run.run_dir)
    _trained_once_by_trial_ranks(events, 3, {1, 2})
    assert stored_seqs(run_id) == file_seqs(run.run_dir), "the database holds exactly the log"
    started = next(e["payload"] for e in events if e["kind"] == "status" and e["payload"].get("search") == "discrete")
    assert started["workers"] == 2 and started["worker_ids"] == [1, 2]
    assert json.loads((Path(run.run_dir) / "genotype.json").read_text())
    assert events[-1]["payload"]["state"] == "succeeded"


def _rank_pid(run_id: int, rank: int) -> int | None:
    """The pid of `nasforge search` rank `rank` of this run (its trial children share the environment, not the
    command line)."""
    want = {f"NASFORGE_RUN_ID={run_id}".encode(), f"OMPI_COMM_WORLD_RANK={rank}".encode()}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = set((proc / "environ").read_bytes().split(b"\0"))
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if want <= env and b"search" in cmd and b"--run-dir" in cmd:
            return int(proc.name)
    return None


def test_a_killed_trial_rank_fails_the_run_naming_that_rank(real_search):
    run_id = _queue(_experiment(4, processes=3))
    control.launch(run_id)
    run = _drive(run_id, {"running", "failed"}, 60)
    trials = Path(run.run_dir) / "trials"
    # Both trial ranks are in their first trial once two trial logs exist.
    wait_for(lambda: trials.is_dir() and len(list(trials.glob("trial-*-0.log"))) >= 2, 120, what="two trials started")
    pid = wait_for(lambda: _rank_pid(run_id, 2), 30, what="rank 2's process")
    os.kill(pid, signal.SIGKILL)
    run = _drive(run_id, {"failed", "succeeded"}, 90)
    assert run.status == "failed"
    said = run.status_reason.splitlines()[0]
    assert said.startswith(f"trial worker rank 2 (pid {pid} on ") and "died while running trial" in said, said
    events = _events(run.run_dir)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert stored_seqs(run_id) == file_seqs(run.run_dir)


def test_a_second_search_on_a_live_run_directory_exits_2_and_writes_nothing(tmp_path):
    from nas_core.rundir import RunDir, RunLock

    rd = RunDir(tmp_path / "run")
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(_experiment(1)))
    rd.root.mkdir()
    rd.events.write_text('{"seq":1,"time":1.0,"kind":"heartbeat","payload":{}}\n')
    with RunLock(rd.lock):
        out = subprocess.run([NASFORGE, "search", str(tmp_path / "exp.yaml"), "--run-dir", str(rd.root)],
                             capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 2, out.stderr
    assert "another search is writing this run directory" in out.stderr and f"pid {os.getpid()}" in out.stderr
    assert rd.events.read_text() == '{"seq":1,"time":1.0,"kind":"heartbeat","payload":{}}\n', "no event appended"
    assert not rd.trials_checkpoint.exists() and not rd.job.exists()
