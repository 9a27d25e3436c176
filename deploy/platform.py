"""`make run`: the whole platform on embedded defaults, in the foreground until Ctrl-C.

SQLite under NASFORGE_DATA_DIR (./var), a redis-server on a free loopback port (or REDIS_URL), one Celery
worker, beat, and the API + UI on http://127.0.0.1:8000, kept up by supervisord (deploy/supervise.py): a
service that dies is restarted and the platform stays up. Ctrl-C stops everything it started.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deploy.local import ROOT, api_command, beat_command, free_port, redis_command, wait_port, worker_command
from deploy.supervise import Supervisor
from nas_core.rundir import LocalRecord, RunDir


def main() -> int:
    data_dir = Path(os.environ.get("NASFORGE_DATA_DIR", ROOT / "var")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = int(os.environ.get("NASFORGE_PORT", "8000"))
    stopping = False

    def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    redis_url = os.environ.get("REDIS_URL")
    env = {"NASFORGE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    sup = Supervisor(data_dir, env)
    if not redis_url:
        redis_port = free_port()
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        sup.add("redis", redis_command(data_dir, redis_port), startsecs=1)
    env["REDIS_URL"] = redis_url
    sup.add("worker", worker_command(data_dir, beat=False), startsecs=5)
    sup.add("beat", beat_command(data_dir), startsecs=5)
    sup.add("api", api_command(port), startsecs=5)
    try:
        print(f"nasforge: data in {data_dir}, Redis at {redis_url}", flush=True)
        token = _first_token(env)  # the schema is migrated before any service opens the database
        sup.start()
        wait_port(port, sup.proc, timeout=90, what="the API under supervisord (uvicorn backend.main:app)")
        url = f"http://127.0.0.1:{port}"
        if token:
            # First start: a newcomer gets a demo search moving, and a link that signs the browser in.
            _seed_demo(env, url, token)
            print(f"nasforge: first admin token (shown once, only its hash is stored): {token}", flush=True)
            print(f"nasforge: open {url}/#token={token}", flush=True)
        print(f"nasforge: API and UI on {url}  (logs in {data_dir}/logs; Ctrl-C stops)", flush=True)
        while not stopping:
            # supervisord restarts the services; only its own death (never expected) ends the platform.
            if not sup.alive():
                print(f"nasforge: supervisord exited with code {sup.proc.returncode}; see {data_dir}/logs/supervisord.log",
                      file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        print("nasforge: stopping", flush=True)
        sup.stop()
        _stop_local_runs(data_dir / "runs")


def _stop_local_runs(runs_dir: Path, grace_s: float = 10.0) -> None:
    """End the runs the local launcher started: they are detached so a worker restart keeps them, but Ctrl-C
    on `make run` leaves no process behind. Killed by SIGTERM, they are requeued from their checkpoint on the
    next start."""
    groups = []
    for folder in runs_dir.iterdir() if runs_dir.is_dir() else ():
        record = LocalRecord.read(RunDir(folder).local_record)
        try:
            cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes() if record else b""
        except OSError:
            continue
        if b"worker.launchers._runner" in cmdline and str(folder).encode() in cmdline:
            groups.append(record.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in groups:
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace_s
        while sig == signal.SIGTERM and time.monotonic() < deadline and any(_group_alive(g) for g in groups):
            time.sleep(0.2)
    if groups:
        print(f"nasforge: stopped {len(groups)} local run(s); they resume from their checkpoint on the next start", flush=True)


def _group_alive(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _first_token(env: dict) -> str | None:
    """Create the first admin token once (the database keeps only its hash); None on later starts."""
    code = "from backend.core.bootstrap import ensure_admin_token; t = ensure_admin_token(); print(t or '')"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"nasforge: could not prepare the database:\n{out.stderr}")
    return out.stdout.strip() or None


def _seed_demo(env: dict, url: str, token: str) -> None:
    # The token travels in the environment, never on a command line that `ps` shows.
    code = "import os; from backend.core.bootstrap import seed_demo; seed_demo(os.environ['NASFORGE_URL'], os.environ['NASFORGE_TOKEN'])"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env, "NASFORGE_URL": url, "NASFORGE_TOKEN": token},
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        print(f"nasforge: the demo experiment could not be seeded (the platform runs without it):\n{out.stderr[-2000:]}",
              file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
