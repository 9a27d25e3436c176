"""Delivery latency from ingest to SSE clients: 50 clients, each following its own run, each run receiving
20 events/s (a watcher polling every 50 ms stores each run's new event, all runs in one `crud.ingest_many`).

Everything on loopback: a redis-server, one uvicorn process (backend.main:app, SQLite WAL), `writers` ingest processes,
and the 50 clients in this process. Latency = client receipt - the event's `time`, stamped just before ingest.
`python -m bench sse_latency [clients=50] [rate=20] [seconds=20] [writers=1]`; goal: p95 under 250 ms.
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import statistics
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


def _ingest(data_dir: str, redis_url: str, run_ids: list[int], rate: float, seconds: float, go, out) -> None:
    """Child process: every 1/rate s, one event for every run; reports how many it sent and how often it lagged."""
    settings = Settings(data_dir=Path(data_dir), redis_url=redis_url)
    r = get_redis(redis_url)
    sent, late = 0, 0
    with Session(get_engine(settings), expire_on_commit=False) as session:
        crud.get_run(session, run_ids[0])
        out.put("ready")
        go.wait()
        start_at = time.time()
        tick, seq = start_at, 0
        while tick < start_at + seconds and time.time() < start_at + seconds + 1:
            seq += 1
            # One poll of the watcher: each run's new line, all runs in one transaction (crud.ingest_many).
            now = time.time()
            polled = {run_id: [{"seq": seq, "kind": "metric", "time": now, "payload": {"step": seq, "loss": 1.0 / seq}}]
                      for run_id in run_ids}
            sent += sum(crud.ingest_many(session, polled, redis=r).values())
            tick += 1.0 / rate
            delay = tick - time.time()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.5 / rate:
                late += 1
    out.put({"sent": sent, "late_ticks": late, "ticks": seq, "cpu_s": time.process_time()})


async def _client(host: str, port: int, path: str, token: str, stop_at: float, warm_until: float, lat: list[float],
                  counts: list[int]) -> None:
    """A bare HTTP/1.1 SSE client on asyncio streams: the measuring side should cost little CPU next to the server."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{path}: {head[:200]!r}")
    buf = b""
    try:
        while time.time() < stop_at:
            size = int((await reader.readline()).strip() or b"0", 16)  # chunked transfer encoding
            if size == 0:
                return
            buf += (await reader.readexactly(size + 2))[:-2]
            *lines, buf = buf.split(b"\n")
            now = time.time()
            for line in lines:
                if line.startswith(b"data: "):
                    ev = json.loads(line[6:])
                    counts[0] += 1
                    if ev.get("time", 0) >= warm_until:
                        lat.append(now - ev["time"])
    finally:
        writer.close()


async def _follow(base: str, token: str, run_ids: list[int], seconds: float, warmup: float, go) -> tuple[list[float], int]:
    lat: list[float] = []
    counts = [0]
    now = time.time()
    # Clients connect during the first second; then the ingest starts; latencies count after the warm-up.
    start_at = now + 1.0
    stop_at, warm_until = start_at + seconds + 1.0, start_at + warmup
    host, port = base.rsplit("//", 1)[1].split(":")
    tasks = [asyncio.create_task(_client(host, int(port), f"/api/runs/{rid}/stream", token, stop_at, warm_until, lat, counts))
             for rid in run_ids]
    await asyncio.sleep(start_at - time.time())
    go.set()
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, stop_at - time.time() + 5))
    for t in pending:
        t.cancel()
    for t in done:
        if t.exception():
            raise t.exception()
    return lat, counts[0]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (and its reaped children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(quick: bool = False, clients: int | str = 50, rate: float | str = 20, seconds: float | str = 20,
        writers: int | str = 1) -> dict:
    clients, rate, seconds, writers = int(clients), float(rate), float(seconds), int(writers)
    if quick:
        clients, seconds = 5, 3.0
    work = Path(tempfile.mkdtemp(prefix="nasforge-bench-sse-"))
    with Stack(work) as stack:
        redis_url = stack.redis()
        settings = Settings(data_dir=work / "var", redis_url=redis_url)
        engine = get_engine(settings)
        run_migrations(engine)
        with Session(engine, expire_on_commit=False) as session:
            exp = crud.create_experiment(session, ExperimentConfig(name="bench"), None)
            run_ids = [crud.launch(session, exp, baselines=False, runs_dir=settings.runs_dir)[0].id for _ in range(clients)]
            token = create_admin_token(session)
        port = free_port()
        stack.api({"NASFORGE_DATA_DIR": str(work / "var"), "REDIS_URL": redis_url, "DATABASE_URL": ""}, port)
        ctx = mp.get_context("spawn")
        out, go = ctx.Queue(), ctx.Event()
        # writers > 1: several watcher processes (Celery worker processes), the runs split between them.
        procs = [ctx.Process(target=_ingest, args=(str(work / "var"), redis_url, run_ids[i::writers], rate, seconds, go, out))
                 for i in range(writers)]
        for p in procs:
            p.start()
        assert [out.get(timeout=120) for _ in procs] == ["ready"] * writers
        api_proc = stack.services[-1].proc
        cpu0, self0 = _cpu_s(api_proc.pid), time.process_time()
        lat, received = asyncio.run(_follow(f"http://127.0.0.1:{port}", token, run_ids, seconds, min(2.0, seconds / 4), go))
        cpu = {"api_server_cpu_s": round(_cpu_s(api_proc.pid) - cpu0, 1), "clients_cpu_s": round(time.process_time() - self0, 1)}
        parts = [out.get(timeout=60) for _ in procs]
        stats = {k: sum(p[k] for p in parts) for k in ("sent", "late_ticks")} | {"ticks": max(p["ticks"] for p in parts)}
        cpu["ingest_cpu_s"] = round(sum(p["cpu_s"] for p in parts), 1)
        for p in procs:
            p.join(30)
        dispose_engine(settings.db_url)
    load = os.getloadavg()[0]
    ms = [x * 1000 for x in lat]
    if not ms:
        raise RuntimeError(f"no event reached a client ({received} received, {stats['sent']} sent); see {work}/logs")
    result = {
        "clients": clients, "rate_per_run": rate, "writers": writers, "seconds": seconds, "events_sent": stats["sent"],
        "events_received": received, "late_ingest_ticks": stats["late_ticks"], "ticks": stats["ticks"],
        "achieved_rate_per_run": round(stats["sent"] / clients / seconds, 1), "load_avg_1m": round(load, 1), **cpu,
        "latency_ms": {"p50": round(statistics.median(ms), 1), "p95": round(_pct(ms, 0.95), 1),
                       "p99": round(_pct(ms, 0.99), 1), "max": round(max(ms), 1), "samples": len(ms)},
    }
    l = result["latency_ms"]
    result["figure"] = (f"ingest->SSE p50 {l['p50']} ms, p95 {l['p95']} ms (goal < 250) with {clients} clients x "
                        f"{result['achieved_rate_per_run']} events/s each (asked {rate:g}); load avg {load:.1f} on {os.cpu_count()} cores")
    return result
