"""Fixtures for the backend tests: a fresh database per test (SQLite file, or a new database on the real
PostgreSQL server of tests/conftest.py), a Redis database of the session's real redis-server, and the app."""
from __future__ import annotations

import itertools
import time
import uuid

import psycopg
import pytest
import redis as redis_lib
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.core.config import Settings
from backend.core.db import dispose_engine, get_engine
from backend.core.security import create_admin_token, create_user, issue_token
from backend.core.streams import get_redis
from backend.main import create_app
from deploy.local import Stack, free_port

# Redis databases 8-15 are ours (the platform fixture uses 0): each test flushes the one it gets; 7 holds the
# stub worker's queue for the whole session.
_REDIS_DBS = itertools.cycle(range(8, 16))
SERVER_TOKEN_CAP = 20  # NASFORGE_MAX_TOKENS_PER_USER of the `server` fixture


def _plain_pg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _connect(url: str, timeout: float = 30.0) -> psycopg.Connection:
    # The server listens before it accepts sessions ("the database system is starting up"): wait for that.
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(_plain_pg(url), autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nasforge.db'}"
        yield url
        dispose_engine(url)
        return
    base = request.getfixturevalue("postgres_url")
    name = "t_" + uuid.uuid4().hex[:12]
    with _connect(base) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = base.rsplit("/", 1)[0] + "/" + name
    yield url
    dispose_engine(url)
    with _connect(base) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def redis_db_url(redis_url):
    url = redis_url.rsplit("/", 1)[0] + f"/{next(_REDIS_DBS)}"
    client = redis_lib.Redis.from_url(url)
    client.flushdb()
    yield url
    client.close()


@pytest.fixture
def settings(tmp_path, db_url, redis_db_url) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=db_url, redis_url=redis_db_url,
                    frontend_dir=tmp_path / "no-frontend", worker_ping_timeout_s=0.3, health_cache_s=0)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def session(client, settings):
    with Session(get_engine(settings), expire_on_commit=False) as s:
        yield s


@pytest.fixture
def server(tmp_path, db_url, redis_db_url):
    """uvicorn backend.main:app in its own process (as deployed), on SQLite or a fresh PostgreSQL database; its
    service logs are in `logs`."""
    port = free_port()
    env = {"NASFORGE_DATA_DIR": str(tmp_path / "var"), "REDIS_URL": redis_db_url, "NASFORGE_SSE_BLOCK_MS": "200",
           "NASFORGE_FRONTEND_DIR": str(tmp_path / "none"), "DATABASE_URL": db_url,
           "NASFORGE_WORKER_PING_TIMEOUT_S": "0.2", "NASFORGE_MAX_TOKENS_PER_USER": str(SERVER_TOKEN_CAP)}
    settings = Settings(data_dir=tmp_path / "var", database_url=db_url, redis_url=redis_db_url)
    with Stack(tmp_path / "stack") as stack:
        stack.api(env, port)
        with Session(get_engine(settings), expire_on_commit=False) as session:
            token = create_admin_token(session)
            yield {"url": f"http://127.0.0.1:{port}", "session": session, "redis": get_redis(redis_db_url),
                   "headers": {"Authorization": f"Bearer {token}"}, "token": token, "settings": settings,
                   "logs": stack.workdir / "logs"}
    dispose_engine(settings.db_url)


class Tokens:
    """Bearer headers for each kind of caller, made through backend.core.security."""

    def __init__(self, session: Session):
        self.session = session
        self.admin = self.h(create_admin_token(session))
        alice = create_user(session, "alice")
        bob = create_user(session, "bob")
        self.alice_id, self.bob_id = alice.id, bob.id
        self.write = self.h(issue_token(session, scopes=["write"], user_id=alice.id)[1])
        self.other_writer = self.h(issue_token(session, scopes=["write"], user_id=bob.id)[1])
        self.read = self.h(issue_token(session, scopes=["read"], user_id=bob.id)[1])

    @staticmethod
    def h(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(session) -> Tokens:
    return Tokens(session)


@pytest.fixture
def redis_client(redis_db_url):
    c = redis_lib.Redis.from_url(redis_db_url)
    yield c
    c.close()


@pytest.fixture(scope="session")
def worker_redis_url(redis_url, services_dir):
    """REDIS_URL of a real Celery worker process (tests/backend/_stub_worker.py) that answers pings and tasks."""
    import sys

    from celery import Celery

    from deploy.local import ROOT, Stack

    url = redis_url.rsplit("/", 1)[0] + "/7"
    redis_lib.Redis.from_url(url).flushdb()
    with Stack(services_dir / "backend-stub-worker") as stack:
        stack._spawn("stub-worker", [sys.executable, "-m", "celery", "-A", "tests.backend._stub_worker", "worker",
                                     "--pool", "solo", "--loglevel", "WARNING", "--hostname", "stub@%h",
                                     "--without-gossip", "--without-mingle"], env={"REDIS_URL": url}, cwd=ROOT)
        probe = Celery("probe", broker=url)
        deadline = time.monotonic() + 60
        while not probe.control.ping(timeout=0.5):
            assert time.monotonic() < deadline, f"stub Celery worker did not answer; see {stack.workdir}/logs"
        probe.close()
        yield url
