"""Fixtures of the worker tests: a data directory with a migrated SQLite database, this process pointed at it,
and a real Celery worker process (with beat) started on demand."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from deploy.local import Stack
from tests._home import clear_settings_caches, platform_home

FAKE_SEARCH = Path(__file__).resolve().parent / "fake_search.py"
FAKE_COMMAND = json.dumps([sys.executable, str(FAKE_SEARCH)])
_MODULES = 0


# Tests that also run on PostgreSQL, the production database (docker-compose.yml): module, and test (None: all).
_ON_POSTGRES = {
    "test_lifecycle_local": None,
    "test_celery_worker": None,
    "test_interrupted": None,
    "test_e2e_api": {"test_api_to_local_tiny_search_killed_mid_search_resumes_and_succeeds"},
}


def pytest_generate_tests(metafunc):
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if "worker_home" not in metafunc.fixturenames or module not in _ON_POSTGRES:
        return
    only = _ON_POSTGRES[module]
    if only is not None and metafunc.function.__name__ not in only:
        return
    metafunc.parametrize("worker_home", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True, scope="module")


@pytest.fixture(scope="module")
def worker_home(request, tmp_path_factory, redis_url):
    """Environment shared by this process and every worker it starts: same database, runs root and Redis.

    Module-scoped so the variables it sets in this process never outlive the worker tests. SQLite in the data
    directory, or (parametrised, see _ON_POSTGRES) a fresh database on the session's PostgreSQL server."""
    home = tmp_path_factory.mktemp("worker-home")
    # A Redis database of its own: run ids restart with each module's database, so must the event streams; and
    # a worker started elsewhere in the session (the platform fixture) must not take these tasks.
    global _MODULES
    _MODULES += 1
    redis_url = redis_url.rsplit("/", 1)[0] + f"/{8 + _MODULES % 8}"
    if getattr(request, "param", "sqlite") == "sqlite":
        with platform_home(home, redis_url, FAKE_COMMAND) as h:
            yield h
        return
    with _postgres_database(request.getfixturevalue("postgres_url")) as url:
        with platform_home(home, redis_url, FAKE_COMMAND, DATABASE_URL=url) as h:
            yield h


@contextlib.contextmanager
def _postgres_database(server_url: str):
    import psycopg

    from backend.core.db import dispose_engine

    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    name = "w_" + uuid.uuid4().hex[:12]
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = server_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        dispose_engine(url)
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def slurm_home(worker_home, slurm_cluster):
    """The worker environment plus the dev cluster's SLURM_CONF, set for this process too."""
    os.environ["NASFORGE_SLURM_CONF"] = slurm_cluster["SLURM_CONF"]
    clear_settings_caches()
    yield {**worker_home, "env": {**worker_home["env"], "NASFORGE_SLURM_CONF": slurm_cluster["SLURM_CONF"]},
           "slurm_env": slurm_cluster}
    os.environ.pop("NASFORGE_SLURM_CONF", None)
    clear_settings_caches()


@pytest.fixture
def celery_worker(tmp_path):
    """Starts real `celery -A worker.celery_app worker --beat` processes; each is stopped at the end of the test."""
    stack = Stack(tmp_path / "stack")

    def start(env: dict):
        svc = stack.worker(env)
        return svc

    yield start
    stack.stop()


def make_run(*, launcher: str = "local", epochs: int = 3, fake: dict | None = None, resources: dict | None = None,
             name: str = "worker-test", **config) -> int:
    """A queued run of a tiny experiment, created as the API would (backend.crud.launch)."""
    from backend import crud
    from backend.core.db import session_scope
    from nas_core.config import ExperimentConfig

    cfg = ExperimentConfig.model_validate({
        "name": name, "description": json.dumps({"fake": fake or {}}), "search": {"method": "random", "epochs": epochs},
        "launcher": {"kind": launcher, **(resources or {})}, **config,
    })
    with session_scope() as s:
        exp = crud.create_experiment(s, cfg, owner_id=None)
        run, _ = crud.launch(s, exp, launcher=launcher, baselines=False)
        return run.id


def get_run(run_id: int):
    from backend import crud
    from backend.core.db import session_scope

    with session_scope() as s:
        return crud.get_run(s, run_id)


def drive(run_id: int, until: set[str], timeout: float = 60.0):
    """Reconcile passes in this process, as beat would make them, until the run reaches one of `until`."""
    from worker.reconcile import reconcile

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reconcile()
        run = get_run(run_id)
        if run.status in until:
            return run
        time.sleep(0.2)
    run = get_run(run_id)
    raise AssertionError(f"run {run_id} is {run.status} ({run.status_reason}), not {sorted(until)}")


def stored_seqs(run_id: int) -> list[int]:
    from sqlmodel import col, select

    from backend.core.db import session_scope
    from backend.models import Event

    with session_scope() as s:
        return list(s.exec(select(Event.seq).where(Event.run_id == run_id).order_by(col(Event.seq))).all())


def file_seqs(run_dir) -> list[int]:
    path = Path(run_dir) / "events.jsonl"
    return [json.loads(line)["seq"] for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(predicate, timeout: float = 60.0, every: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def wait_status(run_id: int, statuses, timeout: float = 60.0):
    statuses = {statuses} if isinstance(statuses, str) else set(statuses)
    holder = {}

    def check():
        holder["run"] = get_run(run_id)
        return holder["run"].status in statuses

    try:
        wait_for(check, timeout, what=f"run {run_id} to become {sorted(statuses)}")
    except AssertionError as exc:
        run = holder.get("run")
        raise AssertionError(f"{exc}; run is {run.status if run else '?'} ({run.status_reason if run else ''})") from None
    return holder["run"]


def published_seqs(redis_url: str, run_id: int) -> list[int]:
    """Every seq published to the run's Redis stream (the SSE fast path), in stream order."""
    import redis

    from backend.core.streams import entry_events, run_stream

    entries = redis.Redis.from_url(redis_url).xrange(run_stream(run_id))
    return [seq for _, fields in entries for seq, _ in entry_events(fields)[1]]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed SLURM test carries the tails of slurmctld's and slurmd's logs: a scheduler flake seen once in CI
    is otherwise gone with the cluster's temporary directory."""
    outcome = yield
    rep = outcome.get_result()
    home = item.funcargs.get("slurm_home") if hasattr(item, "funcargs") else None
    if rep.when != "call" or not rep.failed or not home:
        return
    logs = Path(home["slurm_env"]["SLURM_CONF"]).parent / "log"
    for name in ("slurmctld.log", "slurmd.log"):
        path = logs / name
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-80:]
            rep.sections.append((f"SLURM {name} (last 80 lines)", "\n".join(tail)))
