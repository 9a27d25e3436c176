"""Leader of a local run's process group: runs the search and records how it ended (`ExitRecord`).

A worker that restarts is no longer the run's parent and cannot wait() for it; this record is how it still
learns the exit code. No record and no process means the run was killed from outside (a lost node, in effect).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from nas_core.rundir import ExitRecord, RunDir


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m worker.launchers._runner RUN_DIR -- COMMAND...", file=sys.stderr)
        return 2
    run_dir, cmd = Path(argv[0]), argv[2:]
    child = subprocess.Popen(cmd, cwd=run_dir)
    # cancel (and `make run` stopping) signals the whole group; the leader outlives the child just long enough
    # to write the record, and says it was signalled: a launcher such as mpirun turns SIGTERM into exit code 1.
    received: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: received.append(signum))
    rc = child.wait()
    ExitRecord(pid=os.getpid(), returncode=rc, signal=-rc if rc < 0 else None,
               interrupted_by=received[0] if received else None).write(RunDir(run_dir).exit_record)
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
