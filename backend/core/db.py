"""Database engine and sessions: SQLite in WAL mode by default, PostgreSQL by URL; schema via Alembic."""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from backend.core.config import Settings, get_settings

_ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def normalize_url(url: str) -> str:
    # psycopg (v3) is the driver we ship; a bare postgresql:// would make SQLAlchemy look for psycopg2.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Many SSE followers read at once from worker threads: a pool larger than the default 5 + 10.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10, max_overflow=30,
                               **_JSON)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **_JSON)


def _loads(text: str):
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # what the json module also reads: NaN or Infinity in a row written by it
        return json.loads(text)


# Event payloads (JSON columns) are most of what the API reads: a compare of 4 runs x 300 epochs of alpha parses
# megabytes of them, and orjson does it several times faster than the json module. Writing stays with the json
# module (orjson would turn a NaN in a config into null).
_JSON = {"json_deserializer": _loads}


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets SSE readers and the ingesting worker work at once; NORMAL sync is durable across
    # process crashes in WAL mode, which is what a run's state needs.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def get_engine(settings: Settings | None = None) -> Engine:
    url = normalize_url((settings or get_settings()).db_url)
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


def dispose_engine(url: str) -> None:
    """Close the pooled connections of `url`'s engine and forget it (tests, throw-away databases)."""
    with _lock:
        engine = _engines.pop(normalize_url(url), None)
    if engine is not None:
        engine.dispose()


def run_migrations(engine: Engine) -> None:
    """`alembic upgrade head` on this engine's database (programmatic, as at server start)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(_ALEMBIC_DIR.parent / "alembic.ini"))
    cfg.set_main_option("script_location", str(_ALEMBIC_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A session for code outside a request (the worker, the CLI); the caller commits."""
    with Session(get_engine(settings), expire_on_commit=False) as session:
        yield session
