"""Browser-test fixtures: the UI served by the real API (uvicorn), a signed-in Chromium page, the API as a client.

Two stacks: `platform` (tests/conftest.py: API + Celery worker + redis) for the full flow, and `ui_stack`, the same
API with no worker on its own Redis database, where launched runs stay queued and their events come through the
API's ingest endpoint; that is how the live-update tests drive the UI without depending on a search's timing.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from deploy.local import ROOT, Stack, free_port, wait_port

pytestmark = pytest.mark.browser


def _need_backend() -> None:
    if importlib.util.find_spec("backend.main") is None:
        pytest.skip("backend/main.py (the API) is not there yet")


def admin_token(env: dict) -> str:
    """A fresh admin token in the stack's database, made the way `make run` makes the first one."""
    out = subprocess.run([sys.executable, "-m", "backend.core.security", "create-admin-token", f"ui-test-{time.time_ns()}"],
                         env={**__import__("os").environ, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"could not create an admin token:\n{out.stderr}"
    return out.stdout.strip().splitlines()[-1]


class Api:
    """The API as a test client; `ingest` appends events the way the worker's watcher does."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def __call__(self, method: str, path: str, **kw):
        r = self.http.request(method, path, **kw)
        assert r.status_code < 400, f"{method} {path}: HTTP {r.status_code} {r.text[:500]}"
        return r.json() if r.content else None

    def experiment(self, name: str, **overrides) -> dict:
        body = {"name": name, "search": {"method": "darts", "epochs": 3}, "baseline": {"random": False},
                "data": {"tile_size": 32, "num_tiles": 8}, "space": {"channels": 4, "depth": 1}}
        for k, v in overrides.items():
            body[k] = {**body.get(k, {}), **v} if isinstance(v, dict) else v
        return self("POST", "/api/experiments", json=body)

    def launch(self, experiment_id: int, **body) -> dict:
        return self("POST", f"/api/experiments/{experiment_id}/runs", json=body)

    def ingest(self, run_id: int, events: list[dict]) -> dict:
        return self("POST", f"/api/runs/{run_id}/events", json=events)


@pytest.fixture(scope="session")
def ui_stack(services_dir, redis_url):
    """The API (and the UI it serves) with no worker: Redis database 1, so the platform's worker (database 0)
    never takes these runs; they stay queued and the tests feed their events through the ingest endpoint."""
    _need_backend()
    data_dir = services_dir / "ui-stack"
    port = free_port()
    env = {"REDIS_URL": redis_url.rsplit("/", 1)[0] + "/1", "NASFORGE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1",
           "NASFORGE_SSE_BLOCK_MS": "200"}
    with Stack(data_dir) as stack:
        try:
            stack.api(env, port)
        except RuntimeError as exc:
            log = data_dir / "logs" / "api.log"
            raise RuntimeError(f"{exc}; the end of {log}:\n{log.read_text()[-3000:] if log.exists() else '(none)'}") from None
        yield {"url": f"http://127.0.0.1:{port}", "env": env, "data_dir": data_dir}


@pytest.fixture(scope="session")
def ui_api(ui_stack) -> Api:
    return Api(ui_stack["url"], admin_token(ui_stack["env"]))


@pytest.fixture(scope="session")
def static_ui():
    """Only the UI (backend/frontend.py on a bare FastAPI app), for the figure tests: no database, no Redis."""
    import uvicorn
    from fastapi import FastAPI

    from backend.frontend import mount_frontend

    app = FastAPI()
    mount_frontend(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port, timeout=30, what="the static UI server")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def page(browser, request, artifacts_dir):
    """A fresh browser context per test; console errors are collected and the page is screenshotted on failure."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.console_errors = []
    # Console errors, with the URL when it is a failed load (the console line alone does not name it).
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(f"{m.text} {m.location.get('url', '')}"))
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    yield pg
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        pg.screenshot(path=str(artifacts_dir / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def sign_in(pg, url: str, token: str, route: str = "#/experiments") -> None:
    """Open the UI the way `make run`'s link does (#token=...), then go to `route`."""
    pg.goto(f"{url}/#token={token}")
    pg.wait_for_function("() => localStorage.getItem('nasforge.token') && location.hash === '#/experiments'")
    if route != "#/experiments":
        pg.evaluate("(r) => { location.hash = r; }", route)


def shot(pg, artifacts_dir: Path, name: str) -> Path:
    path = artifacts_dir / f"ui-{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path
