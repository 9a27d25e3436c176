"""Test-only stand-in for `nasforge search`: same command line and run-directory contract, no training.

It writes `search.epochs` progress events (one every FAKE_STEP_S seconds), checkpoints after each step with the
last event seq, resumes from that checkpoint with --resume, and ends with a `status` event. It tests the worker
(launch, watch, requeue, cancel), not the search. Description JSON {"fake": {"exit": 3}} makes it fail.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import yaml

from nas_core.events import EventLog


def main(argv: list[str]) -> int:
    assert argv[0] == "search" and argv[2] == "--run-dir", argv
    run_dir = Path(argv[3]).resolve()
    resume = "--resume" in argv
    cfg = yaml.safe_load((run_dir / argv[1]).read_text())
    fake = (json.loads(cfg.get("description") or "{}") or {}).get("fake", {})
    steps = int(cfg["search"]["epochs"])
    step_s = float(os.environ.get("FAKE_STEP_S", fake.get("step_s", 0.2)))
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("RANK", "0")))
    if rank != 0:  # only rank 0 writes the log, as the real search does
        time.sleep(step_s * steps)
        return 0
    ckpt = run_dir / "checkpoints" / "last.json"
    start = 0
    if resume and ckpt.exists():
        start = json.loads(ckpt.read_text())["step"]
    with EventLog(run_dir / "events.jsonl", fsync=False) as events:
        events.append("status", {"state": "running", "resumed_from": start if resume else None,
                                 "world": int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))})
        for step in range(start, steps):
            time.sleep(step_s)
            events.append("progress", {"epoch": step + 1, "epochs": steps})
            events.append("heartbeat", {})
            ckpt.parent.mkdir(exist_ok=True)
            tmp = ckpt.with_suffix(".tmp")
            tmp.write_text(json.dumps({"step": step + 1, "seq": events.seq}))
            os.replace(tmp, ckpt)
        code = int(fake.get("exit", 0))
        if code:
            events.append("status", {"state": "failed", "error": f"fake failure with exit code {code}"})
            print("fake_search: failing on purpose", file=sys.stderr)
            return code
        events.append("status", {"state": "succeeded"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
