"""First start of `make run`: the database schema, one admin token printed once, and the demo experiment."""
from __future__ import annotations

from sqlmodel import Session, select

from backend.core.db import get_engine, run_migrations
from backend.core.security import create_admin_token
from backend.models import ApiToken


def ensure_admin_token() -> str | None:
    """Upgrade the schema; create an admin token if none exists and return it (None when one already exists)."""
    engine = get_engine()
    run_migrations(engine)
    with Session(engine) as session:
        if session.exec(select(ApiToken).where(ApiToken.scopes.contains("admin"))).first() is not None:
            return None
        return create_admin_token(session)


def seed_demo(base_url: str, token: str) -> dict:
    """Create and launch the demo search on synthetic helicopters (backend/demo.py), through the API."""
    from backend.demo import seed_demo as _seed

    return _seed(base_url, token)
