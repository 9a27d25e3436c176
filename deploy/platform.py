"""`make run`: the whole platform on embedded defaults, in the foreground until Ctrl-C.

SQLite under NASFORGE_DATA_DIR (./var), a redis-server on a free loopback port (or REDIS_URL), one Celery
worker with beat, and the API + UI on http://127.0.0.1:8000. Ctrl-C stops everything it started.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deploy.local import ROOT, Stack


def main() -> int:
    data_dir = Path(os.environ.get("NASFORGE_DATA_DIR", ROOT / "var")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = int(os.environ.get("NASFORGE_PORT", "8000"))
    stack = Stack(data_dir)
    stopping = False

    def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        redis_url = os.environ.get("REDIS_URL") or stack.redis()
        env = {"REDIS_URL": redis_url, "NASFORGE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
        print(f"nasforge: data in {data_dir}, Redis at {redis_url}", flush=True)
        _first_token(env)
        stack.worker(env)
        stack.api(env, port)
        _seed_demo(env, port)
        print(f"nasforge: API and UI on http://127.0.0.1:{port}  (logs in {data_dir}/logs; Ctrl-C stops)", flush=True)
        while not stopping:
            for svc in stack.services:
                if svc.proc.poll() is not None:
                    print(f"nasforge: {svc.name} exited with code {svc.proc.returncode}; see {svc.log}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        print("nasforge: stopping", flush=True)
        stack.stop()


def _first_token(env: dict) -> None:
    """Create the first admin token once (the database keeps only its hash) and print it."""
    code = "from backend.core.bootstrap import ensure_admin_token; t = ensure_admin_token(); print(t or '')"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"nasforge: could not prepare the database:\n{out.stderr}")
    token = out.stdout.strip()
    if token:
        print(f"nasforge: first admin token (shown once, keep it): {token}", flush=True)


def _seed_demo(env: dict, port: int) -> None:
    code = f"from backend.core.bootstrap import seed_demo; seed_demo('http://127.0.0.1:{port}')"
    subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **env}, cwd=ROOT,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
