"""Sustained event ingest (events/s) through `crud.ingest_events`, batched as the worker's watcher sends them
(500 lines of a run's log per call), on SQLite in WAL mode, publishing each event to a real redis-server.

`python -m bench event_ingest [batch=500] [events=200000] [http=1]`; goal: at least 5,000 events/s.
With http=1 the same batches also go through `POST /api/runs/{id}/events` of a live uvicorn (one client).
"""
from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path

from sqlmodel import Session

from backend import crud
from backend.core.config import Settings
from backend.core.db import dispose_engine, get_engine, run_migrations
from backend.core.security import create_admin_token
from backend.core.streams import get_redis
from deploy.local import Stack, free_port
from nas_core.config import ExperimentConfig


def _log(n: int, seed: int = 0) -> list[dict]:
    """A search's log: per-step metrics, an alpha matrix now and then, log lines and heartbeats."""
    rng = random.Random(seed)
    out = []
    for seq in range(1, n + 1):
        r = rng.random()
        if r < 0.05:
            ev = {"kind": "alpha", "payload": {"epoch": seq // 100, "normal": [[rng.random() for _ in range(8)] for _ in range(14)]}}
        elif r < 0.15:
            ev = {"kind": "log", "payload": {"msg": f"step {seq}: lr 0.025 grad-norm {rng.random():.3f}"}}
        else:
            ev = {"kind": "metric", "payload": {"step": seq, "loss": rng.random(), "acc": rng.random(), "iou": rng.random(), "lr": 0.025}}
        out.append({"seq": seq, "time": time.time(), **ev})
    return out


def _measure(ingest, run_ids: list[int], events: list[dict], batch: int) -> float:
    t0 = time.perf_counter()
    for run_id in run_ids:
        for i in range(0, len(events), batch):
            ingest(run_id, events[i:i + batch])
    return len(events) * len(run_ids) / (time.perf_counter() - t0)


def run(quick: bool = False, batch: int | str = 500, events: int | str = 200000, http: int | str = 1) -> dict:
    batch, events, http = int(batch), int(events), int(http)
    if quick:
        events = 5000
    work = Path(tempfile.mkdtemp(prefix="nasforge-bench-ingest-"))
    with Stack(work) as stack:
        redis_url = stack.redis()
        settings = Settings(data_dir=work / "var", redis_url=redis_url)
        engine = get_engine(settings)
        run_migrations(engine)
        log = _log(events)
        with Session(engine, expire_on_commit=False) as session:
            exp = crud.create_experiment(session, ExperimentConfig(name="bench"), None)
            runs = [crud.launch(session, exp, baselines=False, runs_dir=settings.runs_dir)[0].id for _ in range(4)]
            r = get_redis(redis_url)
            rate = _measure(lambda rid, evs: crud.ingest_events(session, rid, evs, redis=r), runs[:1], log, batch)
            # A re-sent log (watcher restarted from an old offset): every event is a duplicate, nothing stored.
            dup = _measure(lambda rid, evs: crud.ingest_events(session, rid, evs, redis=r), runs[:1], log[: events // 4], batch)
            stored = len(crud.events_since(session, runs[0], 0, 10 ** 9))
            assert stored == events, f"stored {stored} of {events}"
            assert r.xlen(f"nasforge:events:{runs[0]}") == -(-events // batch)  # one stream entry per stored batch
            result = {"events": events, "batch": batch, "events_per_s": round(rate), "duplicate_events_per_s": round(dup)}
            if http:
                import httpx

                token = create_admin_token(session)
                port = free_port()
                stack.api({"NASFORGE_DATA_DIR": str(work / "var"), "REDIS_URL": redis_url, "DATABASE_URL": ""}, port)
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
                    def post(rid, evs):
                        resp = c.post(f"/api/runs/{rid}/events", json=evs)
                        resp.raise_for_status()
                    result["http_events_per_s"] = round(_measure(post, runs[1:2], log, batch))
        dispose_engine(settings.db_url)
    result["load_avg_1m"] = round(os.getloadavg()[0], 1)
    extra = f"; over HTTP {result['http_events_per_s']:,}/s" if http else ""
    result["figure"] = (f"{result['events_per_s']:,} events/s stored+published (SQLite WAL + Redis, batches of {batch}; "
                        f"goal 5,000){extra}; re-sent duplicates {result['duplicate_events_per_s']:,}/s; load avg {result['load_avg_1m']} on {os.cpu_count()} cores")
    return result
