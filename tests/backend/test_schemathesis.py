"""schemathesis against the live OpenAPI schema of an authenticated app (ASGI transport, SQLite, real Redis):
at least 500 generated cases across the operations, no 5xx, every response as the schema documents it."""
from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import Session

from backend import crud
from backend.core.config import Settings
from backend.core.db import dispose_engine, get_engine
from backend.core.security import create_admin_token
from backend.main import create_app
from nas_core.config import ExperimentConfig

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
EXAMPLES = 16


@pytest.fixture
def api(tmp_path, worker_redis_url):
    # A live (stub) Celery worker: health is 200 and launches are consumed, as in production.
    s = Settings(data_dir=tmp_path / "var", redis_url=worker_redis_url, frontend_dir=tmp_path / "none",
                 worker_ping_timeout_s=2.0, health_cache_s=60)
    app = create_app(s)
    with TestClient(app):  # runs the lifespan: migrations, Redis client
        with Session(get_engine(s), expire_on_commit=False) as session:
            token = create_admin_token(session)
            # Something to find: generated ids start at the schema's minimum (1).
            exp = crud.create_experiment(session, ExperimentConfig(name="seed"), owner_id=1)
            run, _ = crud.launch(session, exp, baselines=False, runs_dir=s.runs_dir)
            crud.ingest_events(session, run.id, [{"seq": 1, "kind": "metric", "payload": {"iou": 0.5}}], redis=None)
        yield app, {"Authorization": f"Bearer {token}"}
    dispose_engine(s.db_url)


def test_api_conforms_to_its_schema(api):
    """Each operation, positive and negative data; failures are collected so one run reports them all."""
    app, headers = api
    # The live streams never end on their own; test_sse.py covers them against a real server.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=r"/stream$")
    calls: dict[str, int] = {}
    failures: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        name = f"{op.method.upper()} {op.path}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode, headers=headers))
            @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                      phases=[Phase.explicit, Phase.generate])
            def check(case):
                calls[name] = calls.get(name, 0) + 1
                case.call_and_validate(checks=CHECKS)

            try:
                check()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, name  # no parameters, so no invalid request to make
            except Exception as exc:  # keep going: report every operation that fails
                failures.append(f"{name} [{mode.value}]: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
    assert len(calls) >= 15, sorted(calls)
    assert sum(calls.values()) >= 500, calls
    print("schemathesis cases per operation:", calls, "total", sum(calls.values()))
