"""schemathesis against the live OpenAPI schema of an authenticated app (ASGI transport, SQLite and PostgreSQL, real
Redis): as admin, a read-only token and a non-owner writer, operation by operation and then stateful; at least 500
generated cases on SQLite, no 5xx, every response as the schema documents it."""
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
from backend.core.db import get_engine
from backend.core.security import create_admin_token, create_user, issue_token
from backend.main import create_app
from nas_core.config import ExperimentConfig

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
EXAMPLES = 16


@pytest.fixture
def api(tmp_path, db_url, worker_redis_url):
    """The app on SQLite or PostgreSQL with a live (stub) Celery worker: health is 200 and launches are consumed, as
    in production. Yields the app and the bearer headers of an admin, a read-only token and a non-owner writer."""
    s = Settings(data_dir=tmp_path / "var", database_url=db_url, redis_url=worker_redis_url, frontend_dir=tmp_path / "none",
                 worker_ping_timeout_s=2.0, health_cache_s=60)
    app = create_app(s)
    with TestClient(app):  # runs the lifespan: migrations, Redis client
        with Session(get_engine(s), expire_on_commit=False) as session:
            token = create_admin_token(session)
            # Something to find: generated ids start at the schema's minimum (1); it belongs to the admin (user 1).
            exp = crud.create_experiment(session, ExperimentConfig(name="seed"), owner_id=1)
            run, _ = crud.launch(session, exp, baselines=False, runs_dir=s.runs_dir)
            crud.ingest_events(session, run.id, [{"seq": 1, "kind": "metric", "payload": {"iou": 0.5}}], redis=None)
            bob = create_user(session, "bob")
            read = issue_token(session, scopes=["read"], user_id=bob.id, name="reader")[1]
            other = issue_token(session, scopes=["write"], user_id=bob.id, name="non-owner")[1]
        yield app, {name: {"Authorization": f"Bearer {t}"} for name, t in (("admin", token), ("read", read), ("other", other))}


def _schema(app):
    # The live streams never end on their own; test_sse.py covers them against a real server.
    return schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=r"/stream$")


def _operations(schema, headers: dict, modes: tuple, examples: int, calls: dict, failures: list, who: str) -> None:
    for result in schema.get_all_operations():
        op = result.ok()
        name = f"{op.method.upper()} {op.path}"
        for mode in modes:

            @given(case=op.as_strategy(generation_mode=mode, headers=headers))
            @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                      phases=[Phase.explicit, Phase.generate])
            def check(case):
                calls[name] = calls.get(name, 0) + 1
                case.call_and_validate(checks=CHECKS)

            try:
                check()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, name  # no parameters, so no invalid request to make
            except Exception as exc:  # keep going: report every operation that fails
                failures.append(f"{who} {name} [{mode.value}]: {str(exc)[:1500]}")


def _stateful(schema, headers: dict, scenarios: int, failures: list, who: str) -> int:
    """Chains of calls linked by the ids the responses hand back (create, then read, change, delete what was made)."""
    base = schema.as_state_machine()
    steps = []

    class AsCaller(base):
        def get_call_kwargs(self, case):
            steps.append(f"{case.method} {case.path}")
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)

    try:
        AsCaller.run(settings=settings(max_examples=scenarios, stateful_step_count=6, deadline=None, database=None,
                                       suppress_health_check=list(HealthCheck), phases=[Phase.generate]))
    except Exception as exc:
        failures.append(f"{who} stateful: {str(exc)[:3000]}")
    return len(steps)


def test_api_conforms_to_its_schema(api, db_url):
    """Each operation as admin (positive and negative data), as a read-only token and as a non-owner writer
    (positive), then the stateful phase as each; failures are collected so one run reports them all. PostgreSQL
    gets fewer examples: the point there is the database's own refusals (types, lengths), not more coverage."""
    app, headers = api
    schema = _schema(app)
    full = db_url.startswith("sqlite")
    calls: dict[str, int] = {}
    failures: list[str] = []
    _operations(schema, headers["admin"], (GenerationMode.POSITIVE, GenerationMode.NEGATIVE), EXAMPLES if full else 4,
                calls, failures, "admin")
    for who in ("read", "other"):
        _operations(schema, headers[who], (GenerationMode.POSITIVE,), 4 if full else 2, calls, failures, who)
    steps = {who: _stateful(schema, headers[who], 8 if full else 4, failures, who) for who in ("admin", "read", "other")}
    assert not failures, "\n\n".join(failures)
    assert all(n >= 8 for n in steps.values()), steps  # the stateful phase found links and chained calls
    assert len(calls) >= 15, sorted(calls)
    assert sum(calls.values()) >= (500 if full else 150), calls
    print("schemathesis cases per operation:", calls, "total", sum(calls.values()), "stateful steps:", steps)
