"""The MPI orchestrator: rank 0 proposes candidates and hands each worker rank its next trial the moment it
reports (point-to-point, no barrier); worker ranks run each trial in a child process.

`nasforge search` on a discrete method runs it in place when started under `mpirun -np N` or `srun -n N`
(`world`, `dispatch`, `work`); `python -m nas_core.discrete.orchestrator WORKDIR/job.json` runs a bare job
(see `launch`). Rank 0 is the only writer of the event log and the checkpoint. A worker rank that dies is named
by its rank number: rank 0 knows each worker's pid and looks for the dead one when it is told to stop.
This module and the dispatch path never import torch: only a trial's child process loads the framework.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from nas_core.discrete._scheduler import Scheduler
from nas_core.discrete.job import SearchJob
from nas_core.discrete.trial import run_trial
from nas_core.mpi import mpirun_command
from nas_core.rundir import RunDirBusy, RunLock, read_json, write_json

TAG_READY, TAG_RESULT, TAG_TRIAL, TAG_STOP, TAG_HEARTBEAT = 1, 2, 3, 4, 5
# Rank 0 answers within ~2 ms; an idle worker polls at most every 10 ms (it gets work at once in practice).
_POLL_MIN_S, _POLL_MAX_S, _ROOT_POLL_MAX_S = 0.0005, 0.01, 0.002
# How often rank 0 looks in /proc for worker ranks of its own host that died.
_ALIVE_CHECK_S = 0.5
# A worker rank told to stop (SIGTERM) waits this long before it exits, so that rank 0, stopped at the same moment,
# finds only the rank whose death made the launcher stop the job, not every rank the stop itself ended.
_STOP_GRACE_S = 0.5
# The launcher's size of the world, by launcher: OpenMPI, MPICH/Intel MPI (PMI), srun. Not SLURM_NTASKS: a batch
# script has it too, where one process runs before (or without) srun.
WORLD_SIZE_ENV = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS")


class OrchestratorError(RuntimeError):
    """The search job ended without finishing; the message says why and how to resume."""


class _WorkerLost(Exception):
    pass


class _Stopped(Exception):
    """Rank 0 got SIGTERM: the launcher ends the job (a dead rank, a cancel, a preemption)."""


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
    if comm.rank != 0:
        return work(comm, job)
    lock = RunLock(job.run_dir.lock)
    try:
        lock.acquire()
    except RunDirBusy as exc:
        stop_workers(comm)
        print(f"nasforge: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        write_json(job.run_dir.summary, dispatch(comm, job))
    finally:
        lock.release()
    return 0


def world() -> Any | None:
    """MPI's COMM_WORLD when this process is one of several ranks a launcher started, else None (one process).

    The launcher's environment decides, so a process started alone never initialises MPI; a world that MPI sees
    smaller than the launcher said (srun without a PMI plugin that mpi4py's MPI can use) is an error, not N
    independent searches.
    """
    size = next((int(os.environ[k]) for k in WORLD_SIZE_ENV if os.environ.get(k, "").isdigit()), 1)
    if size <= 1:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise OrchestratorError(f"started as one of {size} processes ({_env_hint()}), but mpi4py is not installed: "
                                "pip install 'nasforge[mpi]', or launch one process") from None
    comm = MPI.COMM_WORLD
    if comm.size != size:
        raise OrchestratorError(f"started as one of {size} processes ({_env_hint()}), but MPI sees a world of "
                                f"{comm.size}: under srun, give it the --mpi plugin this MPI was built for "
                                "(srun --mpi=list; e.g. --mpi=pmix in the cluster profile's `launch`)")
    return comm


def _env_hint() -> str:
    return ", ".join(f"{k}={os.environ[k]}" for k in WORLD_SIZE_ENV if k in os.environ)


def stop_workers(comm: Any) -> None:
    """Tell every worker rank to exit without a trial (the search has nothing for them, or cannot start)."""
    for w in range(1, comm.size):
        comm.send(None, dest=w, tag=TAG_STOP)


def dispatch(comm: Any, job: SearchJob) -> dict[str, Any]:
    """Rank 0: run the search's trials on worker ranks 1..N-1 and return its summary; the caller holds the run
    directory's lock. A lost worker rank ends the job (exit code 3) after a failed status event that names it."""
    from mpi4py import MPI

    workers = list(range(1, comm.size))
    sched = Scheduler(job, workers)
    idle: list[int] = []
    heard: set[int] = set()
    last_seen: dict[int, float] = {}
    procs: dict[int, tuple[str, int]] = {}  # rank -> (host, pid), from its ready message
    status = MPI.Status()
    poll = _POLL_MIN_S
    next_alive_check = time.monotonic() + _ALIVE_CHECK_S

    def stopped(signum: int, frame: Any) -> None:
        raise _Stopped()

    previous = signal.signal(signal.SIGTERM, stopped)
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
                if tag == TAG_READY and msg:
                    procs[src] = (msg["host"], msg["pid"])
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
                if time.monotonic() >= next_alive_check:
                    _check_alive(sched, procs)
                    next_alive_check = time.monotonic() + _ALIVE_CHECK_S
                time.sleep(poll)
                poll = min(2 * poll, _ROOT_POLL_MAX_S)
    except _Stopped:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            _check_alive(sched, procs)
        except _WorkerLost as exc:
            _lost(comm, sched, job, exc)
        # Cancelled or preempted: the run's state is the platform's to say; the checkpoint keeps the trials.
        sched.events.close()
        os.kill(os.getpid(), signal.SIGTERM)
    except _WorkerLost as exc:
        _lost(comm, sched, job, exc)
    except Exception as exc:  # a dispatcher bug or a bad pre-screen: say so in the log, then end every rank
        sched.fail(f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        comm.Abort(1)
    finally:
        signal.signal(signal.SIGTERM, previous)
    stop_workers(comm)
    return sched.close()


def _lost(comm: Any, sched: Scheduler, job: SearchJob, exc: Exception) -> None:
    message = (f"{exc}; ending the job. {len(sched.checkpoint.finished)} of {sched.total} trials finished are kept "
               f"in {sched.checkpoint.path}: rerun the same command to resume.")
    sched.fail(message)
    print(f"nasforge: {message}", file=sys.stderr, flush=True)
    comm.Abort(3)


def _check_silent(sched: Scheduler, last_seen: dict[int, float], job: SearchJob) -> None:
    now = time.monotonic()
    for w, spec in sched.busy.items():
        silent = now - last_seen.get(w, now)
        if silent > job.silent_worker_s:
            raise _WorkerLost(f"worker rank {w} has been silent for {silent:.0f} s while running trial "
                              f"{spec['trial']} (attempt {spec['attempt']}): the rank died or hangs")


def _check_alive(sched: Scheduler, procs: dict[int, tuple[str, int]]) -> None:
    """_WorkerLost naming the first worker rank on this host whose process is gone (or a zombie)."""
    host = socket.gethostname()
    for w, (h, pid) in sorted(procs.items()):
        if h == host and not _pid_alive(pid):
            spec = sched.busy.get(w)
            doing = f"while running trial {spec['trial']} (attempt {spec['attempt']})" if spec else "while idle"
            raise _WorkerLost(f"trial worker rank {w} (pid {pid} on {h}) died {doing}")


def _pid_alive(pid: int) -> bool:
    try:
        # The third field is the state; a dead rank its launcher has not reaped yet is a zombie (Z) or dead (X).
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def work(comm: Any, job: SearchJob) -> int:
    """A worker rank: train the trials rank 0 sends until it says stop; 0 then."""
    from mpi4py import MPI

    gpu = _local_rank(comm.rank) % job.gpus_per_node if job.gpus_per_node else None
    beat_s = max(job.silent_worker_s / 4, 0.05)
    status = MPI.Status()

    def stopping(signum: int, frame: Any) -> None:
        time.sleep(_STOP_GRACE_S)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stopping)
    comm.send({"host": socket.gethostname(), "pid": os.getpid()}, dest=0, tag=TAG_READY)
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
        result = run_trial(spec, worker=comm.rank, gpu=gpu, run_dir=job.root,
                           heartbeat=lambda: comm.send(None, dest=0, tag=TAG_HEARTBEAT), heartbeat_s=beat_s)
        comm.send(result, dest=0, tag=TAG_RESULT)


def _local_rank(rank: int) -> int:
    # From the launcher, not MPI's Split_type: that is collective, and rank 0 may stop the workers without it.
    for key in ("OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "PMI_LOCAL_RANK"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return rank


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
        lines = (err or out).strip().splitlines()
        # What rank 0 said of the cause first: MPI's own abort banner after it (a peer hangup seen by another
        # rank) can be longer than the tail and would push it out.
        said = [line for line in lines if line.startswith("nasforge: ")]
        tail = "\n".join(said[-3:] + [line for line in lines[-12:] if line not in said[-3:]])
        raise OrchestratorError(
            f"discrete search in {job.workdir} {why} after {_finished_count(job)} of {job.prescreen + job.trials} "
            f"trials; they are kept in {job.run_dir.trials_checkpoint}: launch again to resume.\n{tail}")
    return read_json(job.run_dir.summary)


def _finished_count(job: SearchJob) -> int:
    try:
        return len((read_json(job.run_dir.trials_checkpoint) or {}).get("finished", []))
    except ValueError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
