"""docs/api.md's table of who may call what is generated from the routes' dependencies; it must be current."""
from __future__ import annotations

from pathlib import Path

from backend.api.access import DOC, security_table, with_table
from backend.main import app

ROOT = Path(__file__).resolve().parents[2]


def test_the_security_table_in_the_docs_matches_the_routes():
    doc = (ROOT / DOC).read_text()
    table = security_table(app)
    assert with_table(doc, table) == doc, "docs/api.md is stale: run `python -m backend.api.access`"
    rows = [line for line in table.splitlines()[2:]]
    assert len(rows) == len({(m, p) for p, ops in app.openapi()["paths"].items() for m in ops})
    assert "| DELETE | `/api/tokens/{token_id}` | write |" in rows
    assert "| GET | `/api/runs/{run_id}/stream` | read (bearer header or stream ticket) |" in rows
