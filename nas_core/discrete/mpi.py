"""How to launch MPI programs here: the `mpirun` and `srun` command lines the orchestrator, the SLURM
templates and the worker share, with the flags this platform needs in one place."""
from __future__ import annotations

import os
import shutil
from typing import Sequence


def mpirun_command(np: int, argv: Sequence[str], *, mpirun: str = "mpirun") -> list[str]:
    """`mpirun -np NP ... argv` for OpenMPI on one machine (a laptop, a container, a CI runner).

    --oversubscribe: ranks may outnumber cores (workers mostly wait on their trial's child process).
    --bind-to none: a trial's child process and its data loaders may use every core, not their rank's one.
    btl_vader_single_copy_mechanism none: containers often forbid the cross-memory attach vader uses by default.
    --allow-run-as-root: containers run as root, which OpenMPI refuses without it.
    """
    if np < 1:
        raise ValueError(f"np: at least 1 process (got {np})")
    cmd = [mpirun, "-np", str(np), "--oversubscribe", "--bind-to", "none",
           "--mca", "btl_vader_single_copy_mechanism", "none"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd + list(argv)


def srun_command(argv: Sequence[str], *, srun: str = "srun") -> list[str]:
    """`srun` inside an allocation; --kill-on-bad-exit ends the whole step when one rank dies, so a lost
    worker never leaves the others waiting."""
    return [srun, "--kill-on-bad-exit=1", *argv]


def have_mpi() -> bool:
    """True where `mpirun` and mpi4py are both present."""
    if shutil.which("mpirun") is None:
        return False
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True
