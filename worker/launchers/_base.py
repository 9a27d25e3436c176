"""What every launcher does (submit, find, state, cancel) and the scheduler-neutral job state it reports."""
from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nas_core.config import ExperimentConfig, LauncherConfig
from nas_core.mpi import mpirun_command
from nas_core.rundir import RunDir

# Scheduler-neutral states. LOST: the scheduler or process table has no trace of the job and it left no exit
# record, which is what a node failure looks like from outside.
ACTIVE = frozenset({"PENDING", "RUNNING"})
ENDED = frozenset({"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "PREEMPTED", "NODE_FAIL", "LOST"})
REQUEUE_STATES = frozenset({"PREEMPTED", "NODE_FAIL", "LOST"})


@dataclass
class JobState:
    state: str
    reason: str = ""
    restarts: int = 0
    exit_code: int | None = None


@dataclass
class RunSpec:
    """One launch of a run: what the launcher needs, without any database object."""

    run_id: int
    run_dir: Path
    config: ExperimentConfig
    launcher: LauncherConfig
    resume: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def job_name(self) -> str:
        return f"nasforge-run-{int(self.run_id)}"


class Launcher:
    kind = "base"

    def submit(self, spec: RunSpec) -> str:
        """Start the run; return its handle (SLURM job id, or the local process group id)."""
        raise NotImplementedError

    def find(self, spec: RunSpec) -> str | None:
        """The handle of a live job of this run, so a repeated launch adopts it instead of starting another."""
        raise NotImplementedError

    def state(self, handle: str, spec: RunSpec, known: dict[str, str] | None = None) -> JobState:
        """The job's state; `known` is this job's row of `snapshot()`, when the caller took one."""
        raise NotImplementedError

    def snapshot(self) -> dict[str, dict[str, str]]:
        """All jobs at once, for a sweep over many runs; launchers without a cheap listing return {}."""
        return {}

    def cancel(self, handle: str, spec: RunSpec) -> None:
        raise NotImplementedError


def search_argv(base: list[str], resume: bool) -> list[str]:
    """The contract of docs/run-directory.md: run in the run directory, config.yaml beside the event log."""
    here = RunDir(".")  # relative: the job runs with the run directory as its working directory
    return [*base, "search", str(here.config), "--run-dir", str(here.root), *(["--resume"] if resume else [])]


def parallel_argv(spec: RunSpec, argv: list[str]) -> list[str]:
    """Wrap `argv` for several local processes: torchrun for DDP, horovodrun (or mpirun) for Horovod, else mpirun."""
    n = spec.launcher.processes
    if n <= 1:
        return argv
    engine = spec.config.distributed.engine
    if engine == "ddp":
        torchrun = _beside_python("torchrun")
        return [torchrun, "--standalone", f"--nproc-per-node={n}", "--no-python", *argv]
    if engine == "horovod" and (horovodrun := _beside_python("horovodrun", required=False)):
        # One machine: Gloo's controller over loopback needs neither ssh nor an MPI launcher.
        return [horovodrun, "-np", str(n), "--gloo", "--network-interface", "lo", *argv]
    return mpirun_command(n, argv)


def _beside_python(name: str, required: bool = True) -> str | None:
    # The venv's own script first: a torchrun on PATH may belong to another Python.
    local = Path(sys.executable).with_name(name)
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None and required:
        raise RuntimeError(f"{name} not found beside {sys.executable} or on PATH; install it in the worker's environment")
    return found


# The job runs the user's experiment; it needs none of the platform's credentials (compute nodes never reach
# the database or Redis), so they are not handed down to it.
_SECRET_NAMES = {"DATABASE_URL", "NASFORGE_DATABASE_URL", "REDIS_URL", "NASFORGE_REDIS_URL"}
_SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY", re.IGNORECASE)


def job_env(env: dict[str, str]) -> dict[str, str]:
    """The environment a job inherits: the worker's, less the platform's credentials."""
    return {k: v for k, v in env.items() if k not in _SECRET_NAMES and not _SECRET_WORDS.search(k)}


_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_.:\-/]{1,200}$")


def check_token(value: str, what: str) -> str:
    """A second gate behind the pydantic patterns, for values written where a parser (not a shell) reads them."""
    if not _SAFE_TOKEN.match(str(value)):
        raise ValueError(f"{what}: {value!r} holds characters a scheduler option cannot take (letters, digits, _ . : - /)")
    return str(value)


def confine(run_dir: str | os.PathLike, runs_root: str | os.PathLike) -> Path:
    """Resolve `run_dir` and refuse it unless it lies inside the configured runs root."""
    root = Path(runs_root).resolve()
    path = Path(run_dir).resolve()
    if path == root or root not in path.parents:
        raise ValueError(f"run_dir: {path} is outside the runs root {root} (NASFORGE_DATA_DIR/runs); "
                         "a run directory must be a folder inside it")
    return path
