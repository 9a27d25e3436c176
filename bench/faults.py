"""Fault drill: the platform as `make run` supervises it, on PostgreSQL, while a real search runs and an SSE client
follows it: kill -9 the worker, restart Redis, restart the API, restart PostgreSQL, kill -9 the search itself.

At the end the run must have succeeded, the database must hold exactly the run's log (no event lost or doubled)
and the SSE client must have received every event exactly once. A recovery is timed from the fault until
/api/health is all OK again and a new event of the run has been stored (for the search: its next attempt's).
`python -m bench faults [epochs=150]`; the suite runs it smaller (tests/foundation/test_fault_drill.py).
"""
from __future__ import annotations

import collections
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from deploy.local import PostgresCluster, api_command, beat_command, free_port, redis_command, wait_port, worker_command
from deploy.supervise import Supervisor
from nas_core.rundir import RunDir

NASFORGE = str(Path(sys.executable).with_name("nasforge"))
_OPS = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]


def tiny_experiment(epochs: int) -> dict:
    return {
        "name": "fault drill", "seed": 0,
        "space": {"channels": 4, "depth": 1, "cells": {t: {"ops": _OPS, "nodes": 2} for t in ("normal", "down", "up")}},
        "data": {"tile_size": 32, "num_tiles": 16, "batch_size": 4},
        "search": {"method": "darts", "epochs": int(epochs), "pc_k": 2, "warmup_epochs": 0},
        "retrain": {"epochs": 1}, "baseline": {"random": False},
        "launcher": {"kind": "local", "max_restarts": 2},
    }


class SseFollower(threading.Thread):
    """A client of /api/runs/{id}/stream that reconnects (new ticket, Last-Event-ID) whenever the stream breaks,
    and keeps every seq it was sent, duplicates included, so the drill can count them."""

    def __init__(self, url: str, token: str, run_id: int):
        super().__init__(daemon=True)
        self.url, self.token, self.run_id = url, token, run_id
        self.seqs: list[int] = []
        self.reconnects = 0
        self.ended = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        auth = {"Authorization": f"Bearer {self.token}"}
        path = f"/api/runs/{self.run_id}/stream"
        with httpx.Client(base_url=self.url, timeout=httpx.Timeout(10, read=30)) as client:
            while not (self.ended.is_set() or self.stop.is_set()):
                try:
                    ticket = client.post("/api/streams/ticket", json={"path": path}, headers=auth)
                    ticket.raise_for_status()
                    headers = {"Last-Event-ID": str(self.seqs[-1])} if self.seqs else {}
                    with client.stream("GET", path, params={"ticket": ticket.json()["ticket"]}, headers=headers) as resp:
                        resp.raise_for_status()
                        self._read(resp)
                except (httpx.HTTPError, OSError, ValueError, KeyError):
                    pass
                if not self.ended.is_set():
                    self.reconnects += 1
                    time.sleep(0.5)

    def _read(self, resp) -> None:
        event, data = None, []
        for line in resp.iter_lines():
            if self.stop.is_set():
                return
            if line == "":
                if event == "end":
                    self.ended.set()
                    return
                if data:
                    self.seqs.append(json.loads("\n".join(data))["seq"])
                event, data = None, []
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())


def drill(workdir: Path, epochs: int = 150, log=print) -> dict:
    """Run the drill in `workdir`; returns the recoveries (seconds) and the event counts."""
    workdir = Path(workdir)
    pg = PostgresCluster.create()
    port, redis_port = free_port(), free_port()
    env = {
        "NASFORGE_DATA_DIR": str(workdir), "DATABASE_URL": pg.url, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "NASFORGE_SEARCH_COMMAND": json.dumps([NASFORGE]), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
        # A lost search is noticed by the reconcile sweep: every 2 s here, 10 s by default.
        "NASFORGE_RECONCILE_INTERVAL_S": "2",
    }
    sup = Supervisor(workdir, env)
    sup.add("postgres", pg.command, startsecs=1, user=pg.run_as, stopsignal="INT")  # INT: fast shutdown
    sup.add("redis", redis_command(workdir, redis_port), startsecs=1)
    # Started once the schema is migrated; then supervised like the rest.
    sup.add("worker", worker_command(workdir, beat=False), startsecs=5, autostart=False)
    sup.add("beat", beat_command(workdir), startsecs=5, autostart=False)
    sup.add("api", api_command(port), startsecs=5, autostart=False)
    url = f"http://127.0.0.1:{port}"
    follower = None
    try:
        sup.start()
        pg.wait_ready(sup.proc)
        wait_port(redis_port, sup.proc, what="redis-server")
        token = _admin_token(env)
        for name in ("worker", "beat", "api"):
            sup.rpc().startProcess(name)
        wait_port(port, sup.proc, timeout=90, what="the API")
        api = httpx.Client(base_url=f"{url}/api", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        exp = api.post("/experiments", json=tiny_experiment(epochs)).raise_for_status().json()
        run_id = api.post(f"/experiments/{exp['id']}/runs", json={"baselines": False}).raise_for_status().json()["run"]["id"]
        follower = SseFollower(url, token, run_id)
        follower.start()
        _until(lambda: _get(api, f"/runs/{run_id}").get("last_seq", 0) >= 3 and
               Path(_get(api, f"/runs/{run_id}")["run_dir"], "checkpoints", "last.pt").exists(), 180, "the first checkpoint")
        log(f"faults: run {run_id} is searching; injecting faults")

        def kill_worker():
            os.kill(sup.rpc().getProcessInfo("worker")["pid"], signal.SIGKILL)

        def kill_search():
            os.killpg(_get(api, f"/runs/{run_id}")["pid"], signal.SIGKILL)

        # The search's own death first: its resume is the slowest recovery, and whatever time the search has left
        # after it covers the platform's faults (a quiet machine runs the tiny search fast). PostgreSQL next, the
        # slowest of the platform's restarts: the quick ones last, so a fast search is still running for them.
        faults = [("kill -9 search", kill_search), ("restart PostgreSQL", lambda: sup.restart("postgres")),
                  ("kill -9 worker", kill_worker), ("restart Redis", lambda: sup.restart("redis")),
                  ("restart API", lambda: sup.restart("api"))]
        recoveries = {}
        for name, inject in faults:
            before = _get(api, f"/runs/{run_id}")
            if before.get("status") not in ("running", "stale"):
                raise RuntimeError(f"the search was {before.get('status')} before '{name}': raise epochs (now {epochs})")
            t0 = time.monotonic()
            inject()
            attempt = before["attempt"] + (1 if name == "kill -9 search" else 0)
            # Recovered: the platform healthy, the run running again (a requeued attempt passes through submitted)
            # and new events arriving; or, on a fast machine, the search has ended well since (its last events
            # stored after the fault are the proof).
            try:
                _until(lambda: _health_ok(url) and (lambda r: r.get("last_seq", 0) > before["last_seq"]
                                                    and r.get("attempt") == attempt
                                                    and r.get("status") in ("running", "succeeded"))(
                           _get(api, f"/runs/{run_id}")),
                       120, f"recovery from '{name}'")
            except TimeoutError as exc:
                now = _get(api, f"/runs/{run_id}")
                raise TimeoutError(f"{exc}: before it the run was {before.get('status')} attempt {before.get('attempt')} "
                                   f"seq {before.get('last_seq')}; now {now.get('status')} attempt {now.get('attempt')} "
                                   f"seq {now.get('last_seq')} ({(now.get('status_reason') or '')[:300]!r}); API healthy: "
                                   f"{_health_ok(url)}") from None
            recoveries[name] = round(time.monotonic() - t0, 2)
            log(f"faults: {name}: recovered in {recoveries[name]:.1f} s")
        run = _until(lambda: (lambda r: r.get("status") in ("succeeded", "failed", "cancelled") and r)(
            _get(api, f"/runs/{run_id}")), 600, "the search to end")
        follower.ended.wait(60)
        lines = RunDir(run["run_dir"]).events.read_text().splitlines()
        in_log = [json.loads(line)["seq"] for line in lines]
        stored = _stored_seqs(pg.url, run_id)
        sent = collections.Counter(follower.seqs)
        expected = set(in_log)
        result = {
            "status": run["status"], "attempt": run["attempt"], "events_in_log": len(in_log),
            "log_is_1_to_n": in_log == list(range(1, len(in_log) + 1)),
            "stored": len(stored), "lost": len(expected - set(stored)), "doubled": len(stored) - len(set(stored)),
            "extra_stored": len(set(stored) - expected),
            "sse_received": len(follower.seqs), "sse_lost": len(expected - set(sent)),
            "sse_doubled": sum(n - 1 for n in sent.values() if n > 1), "sse_in_order": follower.seqs == sorted(follower.seqs),
            "sse_reconnects": follower.reconnects, "sse_ended": follower.ended.is_set(),
            "recovery_s": recoveries, "restarts": _restarts(url),
        }
        return result
    finally:
        if follower is not None:
            follower.stop.set()
        sup.stop()
        _stop_runs(workdir)
        import shutil

        shutil.rmtree(pg.data, ignore_errors=True)


def run(quick: bool = False, epochs: str | int = 150) -> dict:
    epochs = 100 if quick else int(epochs)
    with tempfile.TemporaryDirectory(prefix="nasforge-faults-") as tmp:
        result = drill(Path(tmp), epochs)
    rec = result["recovery_s"]
    ok = (result["status"] == "succeeded" and result["lost"] == result["doubled"] == 0
          and result["sse_lost"] == result["sse_doubled"] == 0)
    result["figure"] = (f"tiny DARTS search ({epochs} epochs) on PostgreSQL under supervisord, "
                        + ", ".join(f"{k} {v:.1f} s" for k, v in rec.items())
                        + f"; run {result['status']} (attempt {result['attempt']}), {result['events_in_log']} events: "
                        f"stored lost {result['lost']} doubled {result['doubled']}, SSE lost {result['sse_lost']} "
                        f"doubled {result['sse_doubled']} over {result['sse_reconnects']} reconnects"
                        + ("" if ok else " -- FAILED"))
    return result


def _admin_token(env: dict) -> str:
    import subprocess

    from deploy.local import ROOT

    code = "from backend.core.bootstrap import ensure_admin_token; print(ensure_admin_token() or '')"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"could not migrate the database and create a token:\n{out.stderr[-2000:]}")
    return out.stdout.strip()


def _get(api: httpx.Client, path: str) -> dict:
    try:
        resp = api.get(path)
        return resp.json() if resp.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return {}


def _health_ok(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _restarts(url: str) -> dict:
    try:
        detail = httpx.get(f"{url}/api/health", timeout=5).json()["services"]["detail"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return {}
    return {name: svc["restarts"] for name, svc in detail.items() if name != "service-events"}


def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"faults: no {what} within {timeout:.0f} s")


def _stored_seqs(db_url: str, run_id: int) -> list[int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT seq FROM event WHERE run_id = :r ORDER BY seq"), {"r": run_id})]
    finally:
        engine.dispose()


def _stop_runs(workdir: Path) -> None:
    from deploy.platform import _stop_local_runs

    _stop_local_runs(workdir / "runs", grace_s=5)
