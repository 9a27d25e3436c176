"""How nasforge starts MPI programs on one machine: the `mpirun` line with the flags OpenMPI needs here.

Root (containers, CI) needs --allow-run-as-root; a 2-core machine needs --oversubscribe for more ranks than
cores; and TCP over loopback avoids shared-memory transports that containers often lack.
"""
from __future__ import annotations

import os
import shutil


def mpirun_command(np: int, argv: list[str], *, env: dict[str, str] | None = None, loopback: bool = True) -> list[str]:
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        raise RuntimeError("mpirun not found: install OpenMPI (apt-get install openmpi-bin libopenmpi-dev)")
    cmd = [mpirun, "-np", str(int(np)), "--oversubscribe"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    if loopback:
        cmd += ["--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"]
    for key, value in (env or {}).items():
        cmd += ["-x", f"{key}={value}"]
    return cmd + list(argv)
