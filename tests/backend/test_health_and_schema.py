"""Health with a real Celery worker (200) and without one (503); the experiment JSON Schema for the UI's form;
Alembic migrations that match the models exactly, on SQLite (in WAL mode) and PostgreSQL."""
from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from backend.core.config import Settings
from backend.core.db import get_engine, run_migrations
from backend.main import create_app

ROOT = Path(__file__).resolve().parents[2]


def test_health_ok_with_a_live_worker(tmp_path, worker_redis_url):
    s = Settings(data_dir=tmp_path / "var", redis_url=worker_redis_url, frontend_dir=tmp_path / "none", worker_ping_timeout_s=2.0)
    with TestClient(create_app(s)) as c:
        r = c.get("/api/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] and body["database"] == {"ok": True, "detail": "sqlite"} and body["redis"]["ok"]
    assert body["workers"]["ok"] and any(name.startswith("stub@") for name in body["workers"]["detail"])


def test_health_without_worker_is_503_naming_the_part(client):
    r = client.get("/api/health")
    assert r.status_code == 503
    assert r.json()["database"]["ok"] and r.json()["redis"]["ok"]
    assert r.json()["workers"] == {"ok": False, "detail": "no worker answered the ping"}


def test_experiment_schema_has_defaults_and_descriptions(client):
    r = client.get("/api/schema/experiment")
    assert r.status_code == 200
    schema = r.json()
    assert schema["title"] == "Experiment" and "name" in schema["required"]
    search = schema["$defs"]["SearchConfig"]["properties"]
    assert search["epochs"]["default"] == 10 and search["epochs"]["minimum"] == 1
    assert "hypergradient" in search["order"]["description"]


def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(Config(str(ROOT / "backend" / "alembic.ini"))).get_heads()
    assert len(heads) == 1, f"migrations branch: heads {heads}"
    return heads[0]


def test_migrations_match_the_models(settings):
    engine = get_engine(settings)
    run_migrations(engine)
    run_migrations(engine)  # idempotent: a restart upgrades nothing
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
        assert diff == [], diff
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head_revision()
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    names = {ix["name"] for ix in inspect(engine).get_indexes("event")}
    assert "ix_event_run_kind_seq" in names
    uniques = {u["name"] for u in inspect(engine).get_unique_constraints("event")}
    assert "uq_event_run_seq" in uniques


def test_bootstrap_creates_one_admin_token_and_seeds_the_demo(tmp_path, worker_redis_url, monkeypatch):
    """What `make run` does on first start (deploy/platform.py): schema, one token printed once, the demo launched."""
    import threading

    import uvicorn

    from backend.core import bootstrap
    from backend.core.config import get_settings
    from backend.core.db import dispose_engine
    from deploy.local import free_port, wait_port

    monkeypatch.setenv("NASFORGE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("REDIS_URL", worker_redis_url)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        token = bootstrap.ensure_admin_token()
        assert token and token.startswith("nf_")
        assert bootstrap.ensure_admin_token() is None  # later starts print nothing
        s = get_settings()
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(s), host="127.0.0.1", port=port, log_level="warning"))
        t = threading.Thread(target=server.run, daemon=True)
        t.start()
        wait_port(port, timeout=30)
        try:
            out = bootstrap.seed_demo(f"http://127.0.0.1:{port}", token)
        finally:
            server.should_exit = True
            t.join(10)
        assert out["experiment"]["name"] == "demo: darts-helicopters"
        assert out["run"]["method"] == "darts" and len(out["baselines"]) == 1
        dispose_engine(s.db_url)
    finally:
        get_settings.cache_clear()
