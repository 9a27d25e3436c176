"""docker-compose.yml checked against the Compose Specification's JSON schema (the copy check-jsonschema ships;
Docker's compose engine is not available here), plus the wiring a schema cannot see."""
from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from backend.core.config import Settings
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def schema():
    vendor = pytest.importorskip("check_jsonschema.builtin_schemas.vendor",
                                 reason="check-jsonschema (dev extra) ships the compose-spec schema")
    return json.loads(resources.files(vendor).joinpath("compose-spec.json").read_text())


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _interpolate(node, env: dict[str, str]):
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message} rules, enough to see the file as the engine would."""
    if isinstance(node, dict):
        return {k: _interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env) for v in node]
    if not isinstance(node, str):
        return node

    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            raise KeyError(f"{name}: {arg}")
        return arg or ""

    return _VAR.sub(sub, node)


def _errors(schema, doc) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_compose_file_fits_the_compose_spec_before_and_after_interpolation(schema, compose):
    assert _errors(schema, compose) == []
    assert _errors(schema, _interpolate(compose, {"POSTGRES_PASSWORD": "secret"})) == []


def test_the_schema_check_can_fail(schema, compose):
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["ports"] = {"8000": 8000}
    broken["services"]["worker"]["restart"] = ["always"]
    broken["services"]["redis"]["healthcheck"]["interval"] = 5
    errors = _errors(schema, broken)
    assert any(e.startswith("services/api/ports") for e in errors), errors
    assert len(errors) >= 3


def test_services_and_their_wiring(compose):
    services = compose["services"]
    assert {"redis", "postgres", "api", "worker", "beat"} <= set(services)
    assert services["flower"]["profiles"] == ["monitoring"], "Flower only on request"
    worker = services["worker"]["command"]
    assert worker[:4] == ["celery", "-A", "worker.celery_app", "worker"] and "--beat" not in worker
    assert services["beat"]["command"][:4] == ["celery", "-A", "worker.celery_app", "beat"], "one beat, apart"
    for name in ("api", "worker", "beat"):
        svc = services[name]
        assert (ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
        env = _interpolate(svc["environment"], {"POSTGRES_PASSWORD": "pw"})
        assert env["REDIS_URL"].startswith("redis://redis:") and "@postgres:5432/" in env["DATABASE_URL"]
        for dep, cond in svc["depends_on"].items():
            assert cond["condition"] == "service_healthy" and "healthcheck" in services[dep], dep
        # The run directory is one shared volume at the data dir on every container that touches runs.
        assert svc["volumes"][0].endswith(":${NASFORGE_DATA_DIR:-/srv/nasforge}")
    declared = set(compose["volumes"])
    for svc in services.values():
        for vol in svc.get("volumes", []):
            source = _interpolate(vol, {}).split(":")[0]
            assert source.startswith("/") or source in declared, f"volume {source} is not declared"


def test_every_setting_passed_is_one_the_code_reads(compose):
    env = compose["services"]["worker"]["environment"]
    known = {f"NASFORGE_{n.upper()}" for n in {**Settings.model_fields, **WorkerSettings.model_fields}}
    known |= {"DATABASE_URL", "REDIS_URL"}
    assert set(env) - known == set(), "a variable no code reads is a setting that silently does nothing"


def test_only_the_password_must_be_given(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    required = {m.group(1) for m in _VAR.finditer(text) if (m.group(2) or "").endswith("?")}
    assert required == {"POSTGRES_PASSWORD"}
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        _interpolate(compose, {})


def test_every_service_restarts_and_has_a_health_check(compose):
    services = compose["services"]
    for name, svc in services.items():
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), f"{name} is not restarted when it dies"
    for name in ("redis", "postgres", "api", "worker", "beat"):
        check = services[name].get("healthcheck", {}).get("test")
        assert check and check[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
    # $$ is Compose's escape: the container's shell, not Compose, expands the worker's own host name.
    worker_check = services["worker"]["healthcheck"]["test"][1]
    assert "celery@$$HOSTNAME" in worker_check and "$${" not in worker_check
