"""`make run`'s platform process (deploy/platform.py): health all OK, the UI loads in Chromium, a first admin
token is printed once, and Ctrl-C leaves no process behind."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from deploy.local import ROOT, free_port


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _using(directory: Path) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(directory).encode() in cmdline.read_bytes() and _alive(int(cmdline.parent.name)):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def _health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
    except OSError:
        return 0, {}


def _start(data_dir: Path, port: int) -> tuple[subprocess.Popen, Path]:
    log = data_dir.parent / f"platform-{port}.log"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # it must start its own redis-server
    env.update(NASFORGE_DATA_DIR=str(data_dir), NASFORGE_PORT=str(port), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "deploy.platform"], cwd=ROOT, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    return proc, log


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"platform exited early:\n{log.read_text()}"
        status, body = _health(url)
        if status == 200:
            return body
        time.sleep(1)
    raise AssertionError(f"health never all OK: {body}\n{log.read_text()}")


def _stop(proc: subprocess.Popen) -> set[int]:
    spawned = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    proc.wait(60)
    return spawned


@pytest.mark.browser
def test_platform_starts_serves_ui_and_stops_clean(tmp_path, browser, artifacts_dir):
    data_dir, port = tmp_path / "var", free_port()
    url = f"http://127.0.0.1:{port}"
    proc, log = _start(data_dir, port)
    try:
        body = _wait_healthy(url, proc, log)
        for part in ("database", "redis", "workers"):
            assert body[part]["ok"] is True, body
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_load_state("networkidle")
        assert "nasforge" in page.title().lower()
        page.screenshot(path=str(artifacts_dir / "foundation-first-page.png"))
        page.close()
        # The first start seeds a demo search; wait until the local launcher has it running.
        deadline = time.monotonic() + 90
        while not list((data_dir / "runs").glob("*/local.json")) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert list((data_dir / "runs").glob("*/local.json")), f"the demo search never started\n{log.read_text()}"
    finally:
        spawned = _stop(proc) if proc.poll() is None else set()
    assert proc.returncode == 0, log.read_text()
    assert len(spawned) >= 3, f"expected redis, worker and API under the platform, saw {spawned}"
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in spawned) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in spawned if _alive(p)], "processes left behind after Ctrl-C"
    # Detached children too (the demo search runs in its own session under the run directory).
    assert not _using(data_dir), "processes still working in the data directory after Ctrl-C"
    output = log.read_text()
    assert re.search(r"stopped [1-9]\d* local run", output), output
    token = re.search(r"first admin token.*: (nf_\S+)", output)
    assert token, output

    # A second start on the same data reuses the database and prints no new token.
    proc, log2 = _start(data_dir, port)
    try:
        _wait_healthy(url, proc, log2)
    finally:
        _stop(proc)
    assert "first admin token" not in log2.read_text()
