"""The worker's watcher and reconciliation: events/s from a run's event log into SQLite + Redis (against the
same batches ingested directly, so the ratio is what reading and tracking the log costs), and the time of one
reconcile sweep per active local run.

`python -m bench worker_watch [events=50000] [runs=20]`
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from deploy.local import Stack


def run(quick: bool = False, events: int | str = 50000, runs: int | str = 20) -> dict:
    events, runs = (2000, 4) if quick else (int(events), int(runs))
    work = Path(tempfile.mkdtemp(prefix="nasforge-bench-worker-"))
    with Stack(work / "stack") as stack:
        redis_url = stack.redis()
        fake = Path(__file__).resolve().parents[1] / "tests" / "worker" / "fake_search.py"
        os.environ.update({"NASFORGE_DATA_DIR": str(work / "data"), "REDIS_URL": redis_url,
                           "NASFORGE_SEARCH_COMMAND": json.dumps([sys.executable, str(fake)])})
        from backend.core.config import get_settings
        from worker.settings import get_worker_settings

        get_settings.cache_clear()
        get_worker_settings.cache_clear()
        from backend.core.db import get_engine, run_migrations

        run_migrations(get_engine())
        tail_s, direct_s = _tail_vs_direct(events)
        sweep_s = _sweep(runs)
    per_run_ms = 1000 * sweep_s / runs
    return {
        "figure": f"watcher: {events / tail_s:,.0f} events/s from the event log into SQLite+Redis "
                  f"({tail_s / direct_s:.2f}x the time of ingesting the same batches directly); "
                  f"reconcile sweep {per_run_ms:.1f} ms per active local run ({runs} runs)",
        "events": events, "tail_s": round(tail_s, 3), "direct_s": round(direct_s, 3),
        "tail_events_per_s": round(events / tail_s), "direct_events_per_s": round(events / direct_s),
        "runs": runs, "sweep_s": round(sweep_s, 3), "sweep_ms_per_run": round(per_run_ms, 2),
    }


def _make_run(epochs: int = 1, step_s: float = 0.0) -> int:
    from backend import crud
    from backend.core.db import session_scope
    from nas_core.config import ExperimentConfig

    cfg = ExperimentConfig.model_validate({"name": "bench", "description": json.dumps({"fake": {"step_s": step_s}}),
                                           "search": {"method": "random", "epochs": epochs}})
    with session_scope() as s:
        exp = crud.create_experiment(s, cfg, owner_id=None)
        return crud.launch(s, exp, launcher="local", baselines=False)[0].id


def _tail_vs_direct(n: int) -> tuple[float, float]:
    from backend import crud
    from backend.core.db import session_scope
    from nas_core.events import EventLog, read_events
    from nas_core.rundir import RunDir
    from worker.watcher import tail

    ids = [_make_run(), _make_run()]
    with session_scope() as s:
        runs = [crud.get_run(s, i) for i in ids]
    for r in runs:
        Path(r.run_dir).mkdir(parents=True)
        with EventLog(RunDir(r.run_dir).events, fsync=False) as log:
            for i in range(n):
                log.append("metric", {"step": i, "loss": 1.0 / (i + 1), "epoch": i // 100, "epochs": n // 100 + 1})
    with session_scope() as s:
        run = crud.get_run(s, ids[0])
        t0 = time.perf_counter()
        tail(s, run)
        tail_s = time.perf_counter() - t0
    parsed = [ev for _, ev in read_events(RunDir(runs[1].run_dir).events)]
    with session_scope() as s:
        t0 = time.perf_counter()
        for i in range(0, n, 500):
            crud.ingest_events(s, ids[1], parsed[i:i + 500])
        direct_s = time.perf_counter() - t0
    return tail_s, direct_s


def _sweep(n: int) -> float:
    from worker import control
    from worker.reconcile import reconcile

    ids = [_make_run(epochs=1000, step_s=1.0) for _ in range(n)]
    for i in ids:
        control.launch(i)
    reconcile()  # first sweep moves them to running; the timed one is the steady state
    t0 = time.perf_counter()
    reconcile()
    took = time.perf_counter() - t0
    for i in ids:
        control.cancel(i)
    return took
