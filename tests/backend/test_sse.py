"""Server-Sent Events against a real uvicorn process: a client that disconnects mid-stream and reconnects with
Last-Event-ID gets every event exactly once, while the worker-side ingest keeps writing (some publishes lost)."""
from __future__ import annotations

import json
import random
import threading
import time

import httpx
import pytest
from sqlmodel import Session

from backend import crud
from backend.core.security import issue_token
from nas_core.config import ExperimentConfig


def _read(url: str, headers: dict, stop_after: int | None, timeout: float = 30) -> tuple[list[dict], str | None, bool]:
    """Read SSE messages; return (events, last id, whether `end` came). Disconnects after `stop_after` events."""
    events, last_id, ended = [], None, False
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", url, headers=headers, timeout=10) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in r.iter_lines():
            assert time.monotonic() < deadline, "stream did not finish in time"
            if line:
                key, _, value = line.partition(":")
                fields[key] = value[1:] if value.startswith(" ") else value
                continue
            if "data" in fields:
                if fields.get("event") == "end":
                    ended = True
                    break
                events.append(json.loads(fields["data"]))
                last_id = fields.get("id", last_id)
                if stop_after is not None and len(events) >= stop_after:
                    break
            fields = {}
    return events, last_id, ended


def _writer(session_factory, redis_client, run_ids: list[int], n: int, finish: bool) -> threading.Thread:
    rng = random.Random(0)

    def work():
        with session_factory() as session:
            for run_id in run_ids:
                crud.set_run_status(session, run_id, "running")
            seq = 0
            while seq < n:
                k = rng.randint(1, 5)
                lo = max(1, seq - rng.randint(0, 2))  # overlap: the watcher re-sends a few after a "restart"
                for run_id in run_ids:
                    batch = [{"seq": s, "kind": "metric", "payload": {"loss": 1 / s}} for s in range(lo, seq + k + 1)]
                    # Every 7th batch is stored but its Redis publish is lost: readers must find it in the database.
                    crud.ingest_events(session, run_id, batch, redis=None if rng.random() < 1 / 7 else redis_client)
                seq += k
                time.sleep(0.004)
            if finish:
                for run_id in run_ids:
                    crud.set_run_status(session, run_id, "succeeded")

    t = threading.Thread(target=work, daemon=True)
    t.start()
    return t


def _new_runs(session, count: int) -> tuple[int, list[int]]:
    exp = crud.create_experiment(session, ExperimentConfig(name="sse"), None)
    return exp.id, [crud.launch(session, exp, baselines=False)[0].id for _ in range(count)]


def test_run_stream_resumes_with_no_gap_and_no_duplicate(server):
    s = server["session"]
    _, (run_id,) = _new_runs(s, 1)
    engine = s.get_bind()
    writer = _writer(lambda: Session(engine, expire_on_commit=False), server["redis"], [run_id], 300, finish=True)
    url = f"{server['url']}/api/runs/{run_id}/stream"
    got, last_id, ended = [], None, False
    for stop_after in (40, 70, None):  # two disconnects mid-stream, then read to the end
        headers = {**server["headers"], **({"Last-Event-ID": last_id} if last_id else {})}
        events, last_id_new, ended = _read(url, headers, stop_after)
        got += events
        last_id = last_id_new or last_id
        if ended:
            break
    writer.join(30)
    assert ended
    seqs = [e["seq"] for e in got]
    assert seqs == list(range(1, max(seqs) + 1)) and max(seqs) >= 300
    assert all(e["run_id"] == run_id and e["payload"]["loss"] == pytest.approx(1 / e["seq"]) for e in got)
    # After the end, a reconnect from the last id gets nothing new and the end again.
    events, _, ended = _read(url, {**server["headers"], "Last-Event-ID": last_id}, None)
    assert events == [] and ended


def test_experiment_stream_resumes_from_its_cursor(server):
    s = server["session"]
    exp_id, run_ids = _new_runs(s, 2)
    engine = s.get_bind()
    writer = _writer(lambda: Session(engine, expire_on_commit=False), server["redis"], run_ids, 120, finish=False)
    url = f"{server['url']}/api/experiments/{exp_id}/stream"
    got, cursor = [], None
    want = 2 * 120
    for _ in range(20):
        headers = {**server["headers"], **({"Last-Event-ID": cursor} if cursor else {})}
        events, cursor_new, _ = _read(url, headers, stop_after=min(50, want - len(got)))
        got += events
        cursor = cursor_new or cursor
        if len(got) >= want:
            break
    writer.join(30)
    pairs = [(e["run_id"], e["seq"]) for e in got]
    assert len(pairs) == len(set(pairs)), "an event was delivered twice"
    for run_id in run_ids:
        assert [q for r, q in pairs if r == run_id] == list(range(1, 121))
    assert cursor == ",".join(f"{r}:120" for r in sorted(run_ids))


def _ticket(server, path: str, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{server['url']}/api/streams/ticket", json={"path": path}, headers=headers or server["headers"])


def test_stream_auth_by_ticket_for_that_stream_only_and_bad_resume_point(server):
    s = server["session"]
    exp_id, (run_id,) = _new_runs(s, 1)
    crud.ingest_events(s, run_id, [{"seq": 1, "kind": "log", "payload": {"msg": "hi"}}], redis=server["redis"])
    crud.set_run_status(s, run_id, "failed", status_reason="test")
    path = f"/api/runs/{run_id}/stream"
    r = _ticket(server, path)
    assert r.status_code == 201 and r.json()["expires_in"] == 60, r.text
    ticket = r.json()["ticket"]
    assert not ticket.startswith("nf_")
    for _ in range(2):  # EventSource reconnects with the same URL: the ticket holds until it expires
        events, last_id, ended = _read(f"{server['url']}{path}?ticket={ticket}", {}, None)
        assert [e["payload"] for e in events] == [{"msg": "hi"}] and last_id == "1" and ended
    # Bound to its path: not another stream, and not a bearer token anywhere else.
    assert httpx.get(f"{server['url']}/api/experiments/{exp_id}/stream?ticket={ticket}").status_code == 401
    assert httpx.get(f"{server['url']}/api/runs/{run_id}", headers={"Authorization": f"Bearer {ticket}"}).status_code == 401
    # The bearer token itself in the query is no longer accepted.
    assert httpx.get(f"{server['url']}{path}?access_token={server['token']}").status_code == 401
    assert _ticket(server, f"/api/runs/{run_id}/events").status_code == 422
    # Revoking the token ends its tickets; an expired ticket (gone from Redis) opens nothing.
    row, token = issue_token(s, scopes=["read"], user_id=None, name="reader")
    mine = _ticket(server, path, {"Authorization": f"Bearer {token}"}).json()["ticket"]
    row.revoked = True
    s.add(row)
    s.commit()
    assert httpx.get(f"{server['url']}{path}?ticket={mine}").status_code == 401
    for key in server["redis"].scan_iter("nasforge:ticket:*"):
        server["redis"].delete(key)
    assert httpx.get(f"{server['url']}{path}?ticket={ticket}").status_code == 401
    r = httpx.get(f"{server['url']}/api/runs/{run_id}/stream", headers={**server["headers"], "Last-Event-ID": "abc"})
    assert r.status_code == 422 and "Last-Event-ID" in r.json()["detail"]
    r = httpx.get(f"{server['url']}/api/experiments/{exp_id}/stream", headers={**server["headers"], "Last-Event-ID": "1:x"})
    assert r.status_code == 422
    assert httpx.get(f"{server['url']}/api/runs/{run_id}/stream").status_code == 401
