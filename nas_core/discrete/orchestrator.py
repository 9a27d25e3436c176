"""The MPI orchestrator: rank 0 proposes candidates and hands each worker rank its next trial the moment it
reports (point-to-point, no barrier); worker ranks run each trial in a child process.

Run as `mpirun ... python -m nas_core.discrete.orchestrator WORKDIR/job.json` (see `launch`, `nas_core.mpi`), or
under `srun --kill-on-bad-exit=1` so that one dead rank ends the step.
This module and the dispatch path never import torch: only a trial's child process loads the framework.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nas_core.discrete._scheduler import Scheduler
from nas_core.discrete.job import SearchJob
from nas_core.discrete.trial import run_trial
from nas_core.mpi import mpirun_command

TAG_READY, TAG_RESULT, TAG_TRIAL, TAG_STOP, TAG_HEARTBEAT = 1, 2, 3, 4, 5
# Rank 0 answers within ~2 ms; an idle worker polls at most every 10 ms (it gets work at once in practice).
_POLL_MIN_S, _POLL_MAX_S, _ROOT_POLL_MAX_S = 0.0005, 0.01, 0.002


class OrchestratorError(RuntimeError):
    """The search job ended without finishing; the message says why and how to resume."""


class _WorkerLost(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nas_core.discrete.orchestrator", description=__doc__.splitlines()[0])
    parser.add_argument("job", help="path of the search's job.json")
    args = parser.parse_args(argv)
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    try:
        job = SearchJob.load(args.job)
    except ValueError as exc:
        if comm.rank == 0:
            print(f"nasforge: {exc}", file=sys.stderr, flush=True)
        comm.Abort(2)
    if comm.size < 2:
        print("nasforge: the orchestrator needs at least 2 ranks (rank 0 dispatches, the others train); "
              "without MPI use nas_core.discrete.run_search", file=sys.stderr, flush=True)
        return 2
    # Split_type is collective: every rank takes part, rank 0 included.
    local_rank = comm.Split_type(MPI.COMM_TYPE_SHARED).rank
    return _dispatch(comm, job) if comm.rank == 0 else _work(comm, job, local_rank)


def _dispatch(comm: Any, job: SearchJob) -> int:
    from mpi4py import MPI

    workers = list(range(1, comm.size))
    sched = Scheduler(job, workers)
    idle: list[int] = []
    heard: set[int] = set()
    last_seen: dict[int, float] = {}
    status = MPI.Status()
    poll = _POLL_MIN_S
    try:
        while not sched.done or len(heard) < len(workers):
            got = False
            # Drain every waiting message before dispatching and persisting: workers that report together
            # get their next trials together, and pay for one checkpoint write, not one each.
            while comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                src, tag = status.Get_source(), status.Get_tag()
                msg = comm.recv(source=src, tag=tag)
                last_seen[src] = time.monotonic()
                if tag == TAG_HEARTBEAT:
                    continue
                got = True
                heard.add(src)
                if tag == TAG_RESULT:
                    sched.report(src, msg)
                idle.append(src)
            if got:
                for w, spec in sched.assign(idle):
                    comm.send(spec, dest=w, tag=TAG_TRIAL)
                    idle.remove(w)
                    last_seen[w] = time.monotonic()
                sched.flush()
                poll = _POLL_MIN_S
            else:
                _check_silent(sched, last_seen, job)
                time.sleep(poll)
                poll = min(2 * poll, _ROOT_POLL_MAX_S)
    except _WorkerLost as exc:
        message = (f"{exc}; ending the job. {len(sched.checkpoint.finished)} of {job.trials} trials finished are kept "
                   f"in {sched.checkpoint.path}: rerun the same command to resume.")
        sched.fail(message)
        print(f"nasforge: {message}", file=sys.stderr, flush=True)
        comm.Abort(3)
    for w in workers:
        comm.send(None, dest=w, tag=TAG_STOP)
    summary = sched.close()
    _write_json(job.root / "summary.json", summary)
    return 0


def _check_silent(sched: Scheduler, last_seen: dict[int, float], job: SearchJob) -> None:
    now = time.monotonic()
    for w, spec in sched.busy.items():
        silent = now - last_seen.get(w, now)
        if silent > job.silent_worker_s:
            raise _WorkerLost(f"worker rank {w} has been silent for {silent:.0f} s while running trial "
                              f"{spec['trial']} (attempt {spec['attempt']}): the rank died or hangs")


def _work(comm: Any, job: SearchJob, local_rank: int) -> int:
    from mpi4py import MPI

    gpu = local_rank % job.gpus_per_node if job.gpus_per_node else None
    beat_s = max(job.silent_worker_s / 4, 0.05)
    status = MPI.Status()
    comm.send(None, dest=0, tag=TAG_READY)
    while True:
        poll = _POLL_MIN_S
        # Polling instead of a blocking recv: OpenMPI busy-waits in recv, which would steal the cores that
        # the trials of the other ranks run on.
        while not comm.Iprobe(source=0, tag=MPI.ANY_TAG, status=status):
            time.sleep(poll)
            poll = min(2 * poll, _POLL_MAX_S)
        tag = status.Get_tag()
        spec = comm.recv(source=0, tag=tag)
        if tag == TAG_STOP:
            return 0
        result = run_trial(spec, worker=comm.rank, gpu=gpu, log_dir=job.root / "trials",
                           heartbeat=lambda: comm.send(None, dest=0, tag=TAG_HEARTBEAT), heartbeat_s=beat_s)
        comm.send(result, dest=0, tag=TAG_RESULT)


def have_mpi() -> bool:
    """True where `mpirun` and mpi4py are both present."""
    if shutil.which("mpirun") is None:
        return False
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def launch(job: SearchJob, np: int, *, timeout: float | None = None, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `job` under `mpirun -np NP` (rank 0 plus NP-1 workers) and return its summary.

    Raises OrchestratorError naming the cause (a dead rank, a silent worker) when the job ends unfinished;
    calling `launch` again with the same job resumes from its checkpoint.
    """
    path = job.save()
    cmd = mpirun_command(np, [sys.executable, "-m", "nas_core.discrete.orchestrator", str(path)])
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
        why = f"ended with exit code {proc.returncode}"
    except subprocess.TimeoutExpired:
        # SIGTERM first: mpirun forwards it to the ranks; a SIGKILLed mpirun would orphan them.
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        why = f"did not finish within {timeout} s and was stopped"
    if proc.returncode != 0:
        tail = "\n".join((err or out).strip().splitlines()[-12:])
        raise OrchestratorError(
            f"discrete search in {job.workdir} {why} after {_finished_count(job)} of {job.prescreen + job.trials} "
            f"trials; they are kept in {job.root / 'checkpoint.json'}: launch again to resume.\n{tail}")
    return json.loads((job.root / "summary.json").read_text())


def _finished_count(job: SearchJob) -> int:
    try:
        data = json.loads((job.root / "checkpoint.json").read_text())
    except (OSError, ValueError):
        return 0
    return len(data.get("finished", []))


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
