"""Test-only stand-in for `nasforge search`: same command line and run-directory contract, no training.

It writes `search.epochs` progress events (one every FAKE_STEP_S seconds), checkpoints after each step with the
last event seq, resumes from that checkpoint with --resume, and ends with a `status` event. It tests the worker
(launch, watch, requeue, cancel), not the search. Description JSON {"fake": {"exit": 3}} makes it fail.

Why it stays where it does: those lifecycle tests need a run paced to the tenth of a second (cancel it mid-run,
kill it at a known step and resume there, let it fall silent until stale, make it exit with a given code), which
the real search cannot be told to do. It runs as one process only: what several ranks do is the real search's to
show (tests/worker/test_discrete_mpi.py under mpirun and srun; tests/distributed for DDP and Horovod), and a
stand-in that kept ranks 1..N-1 silent would hide exactly that.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import yaml

from nas_core.events import EventKind, EventLog, StatusState
from nas_core.rundir import RunDir, write_json


def main(argv: list[str]) -> int:
    assert argv[0] == "search" and argv[2] == "--run-dir", argv
    run_dir = Path(argv[3]).resolve()
    resume = "--resume" in argv
    cfg = yaml.safe_load((run_dir / argv[1]).read_text())
    fake = (json.loads(cfg.get("description") or "{}") or {}).get("fake", {})
    steps = int(cfg["search"]["epochs"])
    step_s = float(os.environ.get("FAKE_STEP_S", fake.get("step_s", 0.2)))
    world = int(os.environ.get("OMPI_COMM_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    if world != 1:
        print("fake_search: a stand-in for one process; run the real nasforge search on several", file=sys.stderr)
        return 2
    ckpt = run_dir / "checkpoints" / "last.json"
    start = 0
    if resume and ckpt.exists():
        start = json.loads(ckpt.read_text())["step"]
    with EventLog(RunDir(run_dir).events, fsync=False) as events:
        events.append(EventKind.status, {"state": StatusState.running, "resumed_from": start if resume else None})
        for step in range(start, steps):
            time.sleep(step_s)
            events.append(EventKind.progress, {"epoch": step + 1, "epochs": steps})
            events.append(EventKind.heartbeat, {})
            write_json(ckpt, {"step": step + 1, "seq": events.seq}, indent=None)
        code = int(fake.get("exit", 0))
        if code:
            events.append(EventKind.status, {"state": StatusState.failed, "error": f"fake failure with exit code {code}"})
            print("fake_search: failing on purpose", file=sys.stderr)
            return code
        events.append(EventKind.status, {"state": StatusState.succeeded})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
