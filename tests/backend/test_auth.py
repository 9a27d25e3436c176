"""Access control on SQLite and PostgreSQL: token management, the first admin token printed by the CLI hook, and
CORS off unless configured (the matrix of callers x routes is test_access_matrix.py, the attacks test_attacks.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend import listing
from backend.core.config import Settings
from backend.core.db import dispose_engine, get_engine
from backend.main import create_app

ROOT = Path(__file__).resolve().parents[2]


def test_tokens_are_scoped_revocable_and_hashed(client, session, tokens, settings):
    r = client.post("/api/tokens", json={"scopes": ["admin"]}, headers=tokens.write)
    assert r.status_code == 403 and "exceed" in r.json()["detail"]
    new = client.post("/api/tokens", json={"name": "ci", "scopes": ["read"]}, headers=tokens.write).json()
    assert new["token"].startswith("nf_") and new["scopes"] == ["read"]
    h = tokens.h(new["token"])
    assert client.get("/api/users/me", headers=h).json()["user"]["name"] == "alice"
    listed = client.get("/api/tokens", headers=tokens.write).json()
    assert new["id"] in [t["id"] for t in listed] and all("token" not in t for t in listed)
    assert client.delete(f"/api/tokens/{new['id']}", headers=tokens.other_writer).status_code == 404
    assert client.delete(f"/api/tokens/{new['id']}", headers=tokens.write).status_code == 204
    assert client.get("/api/users/me", headers=h).status_code == 401
    # A token with the right id but another secret is refused.
    tid = new["token"].split("_")[1]
    assert client.get("/api/users/me", headers=tokens.h(f"nf_{tid}_{'A' * 43}")).status_code == 401


def test_create_admin_token_cli_prints_a_working_token_stored_only_hashed(tmp_path, redis_db_url):
    env = {**os.environ, "NASFORGE_DATA_DIR": str(tmp_path / "var"), "REDIS_URL": redis_db_url}
    env.pop("DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-m", "backend.core.security", "create-admin-token"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.startswith("nf_") and len(token) > 40
    db_file = tmp_path / "var" / "nasforge.db"
    secret = token.split("_", 2)[2].encode()
    assert all(secret not in p.read_bytes() for p in db_file.parent.glob("nasforge.db*"))
    settings = Settings(data_dir=tmp_path / "var", redis_url=redis_db_url, frontend_dir=tmp_path / "none")
    with TestClient(create_app(settings)) as c:
        me = c.get("/api/users/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["user"]["name"] == "admin" and "admin" in me["scopes"]
    dispose_engine(settings.db_url)


def test_cors_is_off_unless_configured(tmp_path, db_url, redis_db_url):
    pre = {"Origin": "http://ui.example", "Access-Control-Request-Method": "GET"}
    base = dict(data_dir=tmp_path / "var", database_url=db_url, redis_url=redis_db_url, frontend_dir=tmp_path / "none")
    with TestClient(create_app(Settings(**base))) as c:
        r = c.options("/api/experiments", headers=pre)
        assert "access-control-allow-origin" not in r.headers
    with TestClient(create_app(Settings(**base, cors_origins="http://ui.example"))) as c:
        r = c.options("/api/experiments", headers=pre)
        assert r.headers.get("access-control-allow-origin") == "http://ui.example"
        r = c.options("/api/experiments", headers={**pre, "Origin": "http://evil.example"})
        assert r.headers.get("access-control-allow-origin") is None


def test_errors_never_leak_a_stack_trace(client, session, tokens, monkeypatch):
    # Force an internal failure inside a route: the client sees a bland 500, the log gets the trace.
    def boom(*a, **k):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(listing, "list_experiments", boom)
    r = client.get("/api/experiments", headers=tokens.read)
    assert r.status_code == 500
    assert "secret" not in r.text and "Traceback" not in r.text and "internal server error" in r.json()["detail"]
