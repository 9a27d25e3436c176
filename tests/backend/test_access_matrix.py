"""Who may do what, against a live server on SQLite and PostgreSQL: every operation of the OpenAPI x seven callers.

The table below must name exactly the operations the server documents, so a new route fails this test until its
access is decided here. Each call that changes something gets a fresh target (an experiment of its owner with a
cancelled run, that run's ingest token, a token to revoke), so one caller's call never decides another's status.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import httpx
from sqlmodel import Session

from backend import crud
from backend.core.security import create_ingest_token, issue_token
from nas_core.config import ExperimentConfig
from tests.backend.conftest import Tokens

CALLERS = ("anonymous", "read", "other", "owner", "admin", "ingest_this", "ingest_other")


def _read(ok: int = 200) -> tuple[int, ...]:
    return (401, ok, ok, ok, ok, 403, 403)


def _write(ok: int) -> tuple[int, ...]:
    return (401, 403, ok, ok, ok, 403, 403)


def _owner(ok: int, other: int = 403) -> tuple[int, ...]:
    return (401, 403, other, ok, ok, 403, 403)


def _admin(ok: int) -> tuple[int, ...]:
    return (401, 403, 403, 403, ok, 403, 403)


# (method, OpenAPI path) -> (expected status per caller in CALLERS order)
EXPECTED: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/api/health"): (503,) * 7,  # no Celery worker beside this server: health says so to everyone
    ("GET", "/api/health/services"): (200,) * 7,  # the UI header's part: 200 whatever the rest says
    ("GET", "/api/schema/experiment"): (200,) * 7,
    ("GET", "/api/schema/names"): (200,) * 7,
    ("GET", "/api/users/me"): (401, 200, 200, 200, 200, 200, 200),
    ("GET", "/api/users"): _admin(200),
    ("POST", "/api/users"): _admin(201),
    ("GET", "/api/tokens"): _write(200),
    ("POST", "/api/tokens"): _write(201),
    ("DELETE", "/api/tokens/{token_id}"): _owner(204, other=404),  # another user's token is not even found
    ("GET", "/api/experiments"): _read(),
    ("POST", "/api/experiments"): _write(201),
    ("GET", "/api/experiments/{experiment_id}"): _read(),
    ("PUT", "/api/experiments/{experiment_id}"): _owner(200),
    ("PATCH", "/api/experiments/{experiment_id}"): _owner(200),
    ("DELETE", "/api/experiments/{experiment_id}"): _owner(204),
    ("POST", "/api/experiments/{experiment_id}/clone"): _write(201),
    ("POST", "/api/experiments/{experiment_id}/runs"): _owner(201),
    ("GET", "/api/experiments/{experiment_id}/stream"): _read(),
    ("GET", "/api/experiments/{experiment_id}/study"): _read(),
    ("GET", "/api/runs"): _read(),
    ("GET", "/api/runs/{run_id}"): _read(),
    ("POST", "/api/runs/{run_id}/cancel"): _owner(200),
    ("POST", "/api/runs/{run_id}/retry"): _owner(200),
    ("POST", "/api/runs/{run_id}/ingest-token"): _owner(201),
    ("GET", "/api/runs/{run_id}/artifacts"): _read(),
    ("GET", "/api/runs/{run_id}/artifacts/{path}"): _read(),
    ("GET", "/api/runs/{run_id}/events"): _read(),
    # The matrix's runs never retrained: past the access check, each of these says so (409).
    ("GET", "/api/runs/{run_id}/export"): _read(409),
    ("GET", "/api/runs/{run_id}/test-scenes"): _read(409),
    ("POST", "/api/runs/{run_id}/predict"): _write(409),
    # Where to search first: the matrix's run is a search of cells, which has no ranking and is never measured.
    ("GET", "/api/runs/{run_id}/sensitivity"): _read(404),
    ("POST", "/api/runs/{run_id}/sensitivity"): _owner(422),
    ("POST", "/api/runs/{run_id}/events"): (401, 403, 403, 200, 200, 200, 403),
    ("GET", "/api/runs/{run_id}/stream"): _read(),
    ("POST", "/api/streams/ticket"): _read(201),
    ("GET", "/api/compare"): _read(),
}


@dataclass
class Target:
    experiment: int
    run: int  # cancelled, with a genotype.json: retried, read, appended to
    ingest: str  # the run's ingest token
    second_run: int = 0  # compare needs two
    queued_run: int = 0  # of another experiment of the same owner: what cancel acts on
    token_to_revoke: int = 0  # one of the owner's tokens


def _target(session: Session, tokens: Tokens, runs_dir, path: str | None = None) -> Target:
    """What the calls on `path` act on (None: everything, for the reads that share one target)."""
    def cancelled_run(exp) -> int:
        run, _ = crud.launch(session, exp, baselines=False, runs_dir=runs_dir)
        crud.set_run_status(session, run.id, "cancelled", status_reason="matrix")
        return run.id

    exp = crud.create_experiment(session, ExperimentConfig(name="m", baseline={"random": False}), tokens.alice_id)
    t = Target(exp.id, (run := cancelled_run(exp)), create_ingest_token(session, run))
    (runs_dir / str(run)).mkdir(parents=True, exist_ok=True)
    (runs_dir / str(run) / "genotype.json").write_text("{}")
    if path is None:
        t.second_run = cancelled_run(exp)
    if path is None or path.endswith("/cancel"):
        busy = crud.create_experiment(session, ExperimentConfig(name="busy", baseline={"random": False}), tokens.alice_id)
        t.queued_run = crud.launch(session, busy, baselines=False, runs_dir=runs_dir)[0].id
    if path is None or path.startswith("/api/tokens/"):
        t.token_to_revoke = issue_token(session, scopes=["read"], user_id=tokens.alice_id, name="to revoke")[0].id
    return t


_NAMES = itertools.count()


def _request(method: str, path: str, t: Target) -> dict:
    run = t.queued_run if path.endswith("/cancel") else t.run
    url = path.format(experiment_id=t.experiment, run_id=run, token_id=t.token_to_revoke, path="genotype.json")
    body = {
        ("POST", "/api/users"): {"name": f"user{next(_NAMES)}"},
        ("POST", "/api/tokens"): {"scopes": ["read"]},
        ("POST", "/api/experiments"): {"name": "n"},
        ("PUT", "/api/experiments/{experiment_id}"): {"name": "m2", "baseline": {"random": False}},
        ("PATCH", "/api/experiments/{experiment_id}"): {"description": "d"},
        ("POST", "/api/experiments/{experiment_id}/runs"): {"baselines": False},
        ("POST", "/api/runs/{run_id}/events"): [{"seq": 1, "kind": "log", "payload": {}}],
        ("POST", "/api/streams/ticket"): {"path": f"/api/runs/{t.run}/stream"},
        ("POST", "/api/runs/{run_id}/predict"): {"scene": "any"},
    }.get((method, path))
    params = {"runs": [t.run, t.second_run]} if path == "/api/compare" else None
    return {"method": method, "url": url, "json": body, "params": params}


def _status(client: httpx.Client, req: dict, headers: dict) -> int:
    # Streams stay open (the experiment's never ends): the status line is all this test needs.
    with client.stream(**req, headers=headers) as r:
        return r.status_code


def test_every_operation_for_every_caller(server):
    session, base = server["session"], server["url"]
    runs_dir = server["settings"].runs_dir
    tokens = Tokens(session)
    openapi = httpx.get(f"{base}/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in openapi["paths"].items() for m in ops}
    assert documented == set(EXPECTED), (f"decide the access of {sorted(documented - set(EXPECTED))}; "
                                         f"gone: {sorted(set(EXPECTED) - documented)}")
    shared = _target(session, tokens, runs_dir)
    elsewhere = _target(session, tokens, runs_dir)  # its ingest token is "another run's"
    wrong = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for (method, path), expected in sorted(EXPECTED.items()):
            for caller, want in zip(CALLERS, expected):
                t = shared if method == "GET" else _target(session, tokens, runs_dir, path)
                headers = {"anonymous": {}, "read": tokens.read, "other": tokens.other_writer, "owner": tokens.write,
                           "admin": tokens.admin, "ingest_this": tokens.h(t.ingest),
                           "ingest_other": tokens.h(elsewhere.ingest)}[caller]
                got = _status(client, _request(method, path, t), headers)
                if got != want:
                    wrong.append(f"{caller:12} {method} {path}: {got}, expected {want}")
    assert not wrong, "\n".join(wrong)
