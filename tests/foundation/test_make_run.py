"""`make run`'s platform process (deploy/platform.py): health all OK, the UI loads in Chromium, a first admin
token is printed once, and Ctrl-C leaves no process behind.

The three tests share one start of the platform (module fixture `first_start`), in file order: the first looks at
it as it came up, the second kills its worker, the third Ctrl-Cs it during a search and starts it again on the same
data. Each start costs tens of seconds on two cores; run alone, a test gets a start of its own."""
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
        time.sleep(0.25)
    raise AssertionError(f"health never all OK: {body}\n{log.read_text()}")


def _stop(proc: subprocess.Popen) -> set[int]:
    spawned = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    proc.wait(60)
    return spawned


_OPS = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]


def _api(url: str, token: str, method: str, path: str, body: dict | None = None):
    req = urllib.request.Request(f"{url}/api{path}", method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def _until(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-4000:]}")


def _assert_stopped_clean(proc: subprocess.Popen, spawned: set[int], log: Path, data_dir: Path) -> None:
    """The platform, Ctrl-C'ed (`_stop`, which gave `spawned`), left nothing behind."""
    assert proc.returncode == 0, log.read_text()[-4000:]
    assert len(spawned) >= 3, f"expected redis, worker and API under the platform, saw {spawned}"
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in spawned) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in spawned if _alive(p)], "processes left behind after Ctrl-C"
    # Detached children too (a search runs in its own session under the run directory).
    assert not _using(data_dir), "processes still working in the data directory after Ctrl-C"


@pytest.fixture(scope="module")
def first_start(tmp_path_factory):
    """The platform started on a fresh data directory, healthy and with its demo seeded; stopped at the end of the
    module unless a test stopped it."""
    data_dir, port = tmp_path_factory.mktemp("make-run") / "var", free_port()
    url = f"http://127.0.0.1:{port}"
    proc, log = _start(data_dir, port)
    try:
        body = _wait_healthy(url, proc, log)
        _until(lambda: "API and UI on" in log.read_text(), 120, "the demo seeded", log)
        token = re.search(r"first admin token.*: (nf_\S+)", log.read_text())[1]
        yield {"proc": proc, "log": log, "url": url, "port": port, "data_dir": data_dir, "token": token,
               "health": body}
    finally:
        if proc.poll() is None:
            _stop(proc)


def _cancel_active_runs(url: str, token: str) -> None:
    """Cancel what is still queued or running (the demo search): it would share the two cores with the test's."""
    for run in _api(url, token, "GET", "/runs")["items"]:
        if run["status"] not in ("succeeded", "failed", "cancelled"):
            _api(url, token, "POST", f"/runs/{run['id']}/cancel")


@pytest.mark.browser
def test_platform_starts_serves_ui_and_seeds_the_demo(first_start, browser, artifacts_dir):
    body, url, data_dir, log = first_start["health"], first_start["url"], first_start["data_dir"], first_start["log"]
    for part in ("database", "redis", "workers"):
        assert body[part]["ok"] is True, body
    assert {"redis", "worker", "beat", "api"} <= set(body["services"]["detail"]), body
    page = browser.new_page()
    page.goto(url + "/")
    page.wait_for_load_state("networkidle")
    assert "nasforge" in page.title().lower()
    # The header says how the supervised services are (restart counts once any was restarted).
    page.wait_for_selector("#services:not([hidden])", timeout=15000)
    assert page.text_content("#services") == "services ok"
    page.screenshot(path=str(artifacts_dir / "foundation-first-page.png"))
    page.close()
    # The first start seeds a demo search; wait until the local launcher has it running.
    deadline = time.monotonic() + 90
    while not list((data_dir / "runs").glob("*/local.json")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert list((data_dir / "runs").glob("*/local.json")), f"the demo search never started\n{log.read_text()}"


@pytest.mark.slow
def test_kill_9_of_the_worker_under_the_platform_restarts_it_and_the_search_runs_on(first_start):
    proc, log, url, token = first_start["proc"], first_start["log"], first_start["url"], first_start["token"]
    body = first_start["health"]
    assert {"redis", "worker", "beat", "api"} <= set(body["services"]["detail"]), body
    # The demo search would share the two cores with ours: cancel it, then launch a tiny real search.
    _cancel_active_runs(url, token)
    exp = _api(url, token, "POST", "/experiments", {
        "name": "survives the worker", "seed": 0,
        "space": {"channels": 4, "depth": 1, "cells": {t: {"ops": _OPS, "nodes": 2} for t in ("normal", "down", "up")}},
        "data": {"tile_size": 32, "num_tiles": 16, "batch_size": 4},
        "search": {"method": "darts", "epochs": 40, "pc_k": 2, "warmup_epochs": 0},
        "retrain": {"epochs": 1}, "baseline": {"random": False}, "launcher": {"kind": "local"},
    })
    run_id = _api(url, token, "POST", f"/experiments/{exp['id']}/runs", {"baselines": False})["run"]["id"]
    _until(lambda: any(e["kind"] == "metric" for e in _api(url, token, "GET", f"/runs/{run_id}/events")),
           120, "the search's first epoch", log)
    search_pid = _api(url, token, "GET", f"/runs/{run_id}")["pid"]

    # The pid from supervisord's RUNNING event: /api/health can answer 200 while the worker, already serving,
    # is still STARTING for supervisord (its startsecs), with no pid yet; one CI run read None here.
    worker_pid = _until(lambda: (lambda w: w.get("state") == "RUNNING" and w.get("pid"))(
        _health(url)[1].get("services", {}).get("detail", {}).get("worker", {})), 60, "the worker RUNNING with a pid", log)
    os.kill(worker_pid, signal.SIGKILL)
    time.sleep(1)
    assert _alive(search_pid), "the run is not the worker's child: it did not die with it"
    restarted = _until(lambda: (lambda h: h[1].get("services", {}).get("detail", {}).get("worker", {}).get("restarts")
                                and h[1]["services"]["detail"]["worker"]["state"] == "RUNNING" and h)(_health(url)),
                       60, "the worker restarted", log)
    assert proc.poll() is None, "the platform stayed up"
    assert restarted[1]["services"]["detail"]["worker"]["restarts"] == 1
    assert restarted[1]["services"]["detail"]["worker"]["pid"] != worker_pid

    run = _until(lambda: (lambda r: r["status"] in ("succeeded", "failed", "cancelled") and r)(
        _api(url, token, "GET", f"/runs/{run_id}")), 240, "the search to end", log)
    assert run["status"] == "succeeded", run["status_reason"]
    assert run["attempt"] == 1 and run["pid"] == search_pid, "the same process finished: never restarted"
    lines = Path(run["run_dir"], "events.jsonl").read_text().splitlines()
    events = _api(url, token, "GET", f"/runs/{run_id}/events?limit=1000")
    assert [e["seq"] for e in events] == [json.loads(l)["seq"] for l in lines] == list(range(1, len(lines) + 1))
    assert "exited: worker (terminated by SIGKILL; not expected)" in log.read_text(), "the death is logged"
    assert proc.poll() is None, "the platform is still up for the next test"


@pytest.mark.slow
@pytest.mark.mpi
def test_ctrl_c_during_an_mpirun_search_stops_clean_and_the_next_start_requeues_it_with_resume(first_start):
    proc, log, url, token = first_start["proc"], first_start["log"], first_start["url"], first_start["token"]
    data_dir, port = first_start["data_dir"], first_start["port"]
    try:
        _cancel_active_runs(url, token)
        # A discrete search on three processes under mpirun: rank 0 dispatches, ranks 1-2 train candidates.
        exp = _api(url, token, "POST", "/experiments", {
            "name": "stopped mid-search", "seed": 0,
            "space": {"channels": 4, "depth": 1, "cells": {t: {"ops": _OPS, "nodes": 2} for t in ("normal", "down", "up")}},
            "data": {"tile_size": 32, "num_tiles": 8, "batch_size": 4},
            "search": {"method": "random", "trials": 60, "trial_epochs": 1},
            "retrain": {"enabled": False}, "baseline": {"random": False},
            "launcher": {"kind": "local", "processes": 3, "max_restarts": 2},
        })
        run_id = _api(url, token, "POST", f"/experiments/{exp['id']}/runs", {"baselines": False})["run"]["id"]
        run = _until(lambda: (lambda r: r["status"] == "running" and r)(_api(url, token, "GET", f"/runs/{run_id}")),
                     120, "the search running", log)
        events = Path(run["run_dir"], "events.jsonl")
        _until(lambda: events.exists() and '"kind":"candidate"' in events.read_text(), 180, "a trained candidate", log)
    finally:
        spawned = _stop(proc) if proc.poll() is None else set()  # Ctrl-C
    _assert_stopped_clean(proc, spawned, log, data_dir)
    output = log.read_text()
    assert re.search(r"stopped [1-9]\d* local run", output), output
    assert len(re.findall(r"first admin token", output)) == 1, output
    record = json.loads(Path(run["run_dir"], "exit.json").read_text())
    assert record["returncode"] != 0 and record["interrupted_by"] == signal.SIGTERM, record
    assert "mpirun" in json.loads(Path(run["run_dir"], "local.json").read_text())["argv"][0]

    # A second start on the same data reuses the database, prints no new token and requeues the stopped search.
    proc, log2 = _start(data_dir, port)
    try:
        _wait_healthy(url, proc, log2)
        again = _until(lambda: (lambda r: r["attempt"] == 2 and r["status"] in ("running", "succeeded", "failed") and r)(
            _api(url, token, "GET", f"/runs/{run_id}")), 120, "the run requeued", log2)
        assert again["status"] != "failed", again["status_reason"]
        local = json.loads(Path(run["run_dir"], "local.json").read_text())
        assert local["resume"] is True and "--resume" in local["argv"], local
    finally:
        _stop(proc)
    assert proc.returncode == 0, log2.read_text()[-4000:]
    assert "first admin token" not in log2.read_text()
