"""Event ingest on SQLite and PostgreSQL: idempotent by (run, seq), progress, Redis streams, size limits, reads."""
from __future__ import annotations

import json
import time

import pytest

from backend import crud
from backend.core.streams import entry_events, experiment_stream, get_redis, run_stream
from backend.core.security import create_ingest_token


def _run(client, session, headers):
    exp = client.post("/api/experiments", json={"name": "e", "baseline": {"random": False}}, headers=headers).json()
    run, _ = crud.launch(session, crud.get_experiment(session, exp["id"]), baselines=False)
    return run


def _events(seqs, kind="metric", **payload):
    return [{"seq": s, "time": time.time(), "kind": kind, "payload": {"loss": 1.0 / s, **payload}} for s in seqs]


def test_ingest_is_idempotent_and_publishes_each_event_once(client, session, settings, tokens, redis_client):
    run = _run(client, session, tokens.write)
    r = get_redis(settings.redis_url)
    assert crud.ingest_events(session, run.id, _events(range(1, 6)), redis=r) == 5
    # The watcher re-sends an overlapping batch after a restart: only seq 6 and 7 are new.
    assert crud.ingest_events(session, run.id, _events(range(3, 8)), redis=r) == 2
    assert crud.ingest_events(session, run.id, _events(range(1, 8)), redis=r) == 0
    stored = crud.events_since(session, run.id, 0)
    assert [e.seq for e in stored] == list(range(1, 8))
    # One stream entry per stored batch (none for the all-duplicate one), each event in exactly one entry.
    for key in (run_stream(run.id), experiment_stream(run.experiment_id)):
        entries = [entry_events(f) for _, f in redis_client.xrange(key)]
        assert [r for r, _ in entries] == [run.id, run.id]
        assert [q for _, items in entries for q, _ in items] == list(range(1, 8))
    first = json.loads(entry_events(redis_client.xrange(run_stream(run.id), count=1)[0][1])[1][0][1])
    assert first["run_id"] == run.id and first["seq"] == 1 and first["payload"]["loss"] == 1.0
    session.refresh(run)
    assert run.last_seq == 7 and run.last_event_at is not None


def test_progress_follows_the_events(client, session, tokens):
    run = _run(client, session, tokens.write)
    crud.ingest_events(session, run.id, _events([1, 2], epoch=2, epochs=8), redis=None)
    assert crud.get_run(session, run.id).progress == pytest.approx(0.25)
    crud.ingest_events(session, run.id, [{"seq": 3, "kind": "progress", "payload": {"progress": 0.6}}], redis=None)
    session.refresh(run)
    assert run.progress == pytest.approx(0.6)
    crud.ingest_events(session, run.id, [{"seq": 4, "kind": "log", "payload": {"progress": 0.1, "msg": "x"}}], redis=None)
    session.refresh(run)
    assert run.progress == pytest.approx(0.6)  # a log line is not a progress report
    # What the search writes (nas_core/search/reporting.py): `fraction` wins over epoch/epochs.
    crud.ingest_events(session, run.id, [{"seq": 5, "kind": "progress", "payload": {"stage": "search", "epoch": 3, "epochs": 4,
                                                                                   "fraction": 0.9, "eta_s": 12.0}}], redis=None)
    session.refresh(run)
    assert run.progress == pytest.approx(0.9)


def test_bad_events_name_index_and_field(client, session, tokens):
    run = _run(client, session, tokens.write)
    with pytest.raises(ValueError, match=r"events\.1\.kind"):
        crud.ingest_events(session, run.id, [*_events([1]), {"seq": 2, "kind": "gossip", "payload": {}}], redis=None)
    with pytest.raises(ValueError, match=r"events\.0\.seq"):
        crud.ingest_events(session, run.id, [{"seq": 0, "kind": "log"}], redis=None)
    with pytest.raises(ValueError, match=r"events\.0\.payload\.x: must be a finite number"):
        crud.ingest_events(session, run.id, [{"seq": 1, "kind": "metric", "payload": {"x": float("nan")}}], redis=None)
    with pytest.raises(ValueError, match=r"events\.0\.payload\.s: must not contain NUL"):
        crud.ingest_events(session, run.id, [{"seq": 1, "kind": "log", "payload": {"s": "a\x00b"}}], redis=None)
    with pytest.raises(ValueError, match=r"events\.0\.time"):
        crud.ingest_events(session, run.id, [{"seq": 1, "kind": "log", "time": "noon"}], redis=None)
    assert crud.events_since(session, run.id) == []  # a bad batch stores nothing
    r = client.post(f"/api/runs/{run.id}/events", json=[*_events([1]), {"seq": 2, "kind": "gossip"}], headers=tokens.write)
    assert r.status_code == 422 and "events.1.kind" in r.json()["message"]
    r = client.post(f"/api/runs/{run.id}/events", json={"seq": 1}, headers=tokens.write)
    assert r.status_code == 422 and "array" in r.json()["detail"]
    r = client.post(f"/api/runs/{run.id}/events", content=b"[{", headers={**tokens.write, "Content-Type": "application/json"})
    assert r.status_code == 400


def test_api_ingest_with_tokens_and_read_since(client, session, tokens):
    run = _run(client, session, tokens.write)
    other = _run(client, session, tokens.write)
    ingest = tokens.h(create_ingest_token(session, run.id))
    batch = [{**e, "rank": 0} for e in _events(range(1, 11))]
    r = client.post(f"/api/runs/{run.id}/events", json=batch, headers=ingest)
    assert r.status_code == 200 and r.json() == {"received": 10, "stored": 10, "last_seq": 10}
    assert client.post(f"/api/runs/{run.id}/events", json=batch, headers=ingest).json()["stored"] == 0
    # The ingest token can append to its own run only, and read nothing.
    assert client.post(f"/api/runs/{other.id}/events", json=batch, headers=ingest).status_code == 403
    assert client.get(f"/api/runs/{run.id}/events", headers=ingest).status_code == 403
    assert client.post(f"/api/runs/{run.id}/events", json=batch, headers=tokens.read).status_code == 403
    got = client.get(f"/api/runs/{run.id}/events", params={"since": 7}, headers=tokens.read).json()
    assert [e["seq"] for e in got] == [8, 9, 10]
    assert got[0]["rank"] == 0 and got[0]["run_id"] == run.id and got[0]["payload"]["loss"] == pytest.approx(1 / 8)
    assert client.get(f"/api/runs/{run.id}/events", params={"kind": "alpha"}, headers=tokens.read).json() == []
    assert client.get(f"/api/runs/{10**6}/events", headers=tokens.read).status_code == 404


def test_oversized_bodies_and_events_get_413(client, session, tokens, settings):
    run = _run(client, session, tokens.write)
    big = "x" * (settings.max_body_bytes + 1)
    r = client.post(f"/api/runs/{run.id}/events", content=big, headers={**tokens.write, "Content-Type": "application/json"})
    assert r.status_code == 413 and "NASFORGE_MAX_BODY_BYTES" in r.json()["detail"]
    fat = [{"seq": 1, "kind": "log", "payload": {"text": "y" * (settings.max_event_bytes + 10)}}]
    r = client.post(f"/api/runs/{run.id}/events", json=fat, headers=tokens.write)
    assert r.status_code == 413 and "events.0" in r.json()["detail"]
    # A chunked upload without Content-Length is counted as it arrives.
    def chunks():
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b" " * 65536
    r = client.post(f"/api/runs/{run.id}/events", content=chunks(), headers={**tokens.write, "Content-Type": "application/json"})
    assert r.status_code == 413


def test_ingest_stores_even_when_redis_is_down(client, session, tokens):
    """The database is the record: with Redis unreachable the batch is stored, and later publishes are skipped
    for a few seconds instead of each waiting on the connect timeout."""
    import redis as redis_lib

    from deploy.local import free_port

    run = _run(client, session, tokens.write)
    dead = redis_lib.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    assert crud.ingest_events(session, run.id, _events([1, 2]), redis=dead) == 2
    t0 = time.monotonic()
    assert crud.ingest_events(session, run.id, _events([3]), redis=dead) == 1
    assert time.monotonic() - t0 < 0.5
    assert [e.seq for e in crud.events_since(session, run.id)] == [1, 2, 3]


def test_ingest_many_is_one_transaction_over_runs(client, session, settings, tokens, redis_client):
    a, b = _run(client, session, tokens.write), _run(client, session, tokens.write)
    r = get_redis(settings.redis_url)
    with pytest.raises(ValueError, match=rf"run {b.id}: events\.0\.kind"):
        crud.ingest_many(session, {a.id: _events([1]), b.id: [{"seq": 1, "kind": "nope"}]}, redis=r)
    assert crud.events_since(session, a.id) == []  # the good batch was not stored either
    assert crud.ingest_many(session, {a.id: _events([1, 2]), b.id: _events([1])}, redis=r) == {a.id: 2, b.id: 1}
    assert crud.ingest_many(session, {a.id: _events([2, 3]), b.id: _events([1])}, redis=r) == {a.id: 1, b.id: 0}
    assert [q for _, f in redis_client.xrange(run_stream(a.id)) for q, _ in entry_events(f)[1]] == [1, 2, 3]
    assert [q for _, f in redis_client.xrange(run_stream(b.id)) for q, _ in entry_events(f)[1]] == [1]
    with pytest.raises(crud.NotFound):
        crud.ingest_many(session, {a.id: _events([4]), 10**6: _events([1])}, redis=r)
