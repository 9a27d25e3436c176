"""Event ingest: a batch of a run's log lines into the database exactly once, then onto the live Redis streams.

The watcher calls it (through `crud.ingest_events`) for every poll of every run, so it avoids the ORM's unit of
work and checks events by hand; `ingest_many` stores the polls of many runs in one transaction.
"""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

from sqlalchemy import Float, bindparam, case, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from backend.core import streams
from backend.core.config import get_settings
from backend.errors import NotFound, TooLarge, check_json_safe
from backend.models import Event, Run, utcnow
from nas_core.events import EVENT_KINDS, Event as LogEvent, EventKind

_DEFAULT = object()
_RUNS = Run.__table__
# last_seq only ever rises (two watchers on one run cannot move it back); progress stays when a poll has none.
_RUN_UPDATE = (
    update(_RUNS).where(_RUNS.c.id == bindparam("b_id")).values(
        last_event_at=bindparam("b_at", type_=_RUNS.c.last_event_at.type),
        last_seq=case((_RUNS.c.last_seq < bindparam("b_top"), bindparam("b_top")), else_=_RUNS.c.last_seq),
        progress=func.coalesce(bindparam("b_progress", type_=Float()), _RUNS.c.progress))
)
_KINDS = frozenset(EVENT_KINDS)
_STD = tuple(LogEvent.model_fields)


def _bounds(field: str) -> tuple[float, float]:
    # Checked by hand below (a pydantic pass per event would halve the ingest rate), with the envelope's own bounds.
    meta = LogEvent.model_fields[field].metadata
    return (next(m.ge for m in meta if getattr(m, "ge", None) is not None),
            next(m.le for m in meta if getattr(m, "le", None) is not None))


_SEQ, _TIME = _bounds("seq"), _bounds("time")
# Events that may carry the run's progress fraction.
_PROGRESS_KINDS = frozenset({EventKind.progress, EventKind.metric})


def _check_event(i: int, ev: Any) -> dict[str, Any]:
    if not isinstance(ev, dict):
        raise ValueError(f"events.{i}: an event is a JSON object")
    seq, kind, t, payload = ev.get("seq"), ev.get("kind"), ev.get("time"), ev.get("payload", {})
    if not isinstance(seq, int) or isinstance(seq, bool) or not _SEQ[0] <= seq <= _SEQ[1]:
        raise ValueError(f"events.{i}.seq: an integer from {_SEQ[0]} to {_SEQ[1]} is required")
    if kind not in _KINDS:
        raise ValueError(f"events.{i}.kind: {kind!r} is not one of {', '.join(EVENT_KINDS)}")
    if t is None:
        t = utcnow().timestamp()
    elif not isinstance(t, (int, float)) or isinstance(t, bool) or not _TIME[0] <= t <= _TIME[1]:
        raise ValueError(f"events.{i}.time: seconds since the epoch (a finite number) are required")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ValueError(f"events.{i}.payload: a JSON object is required")
    return {**ev, "seq": seq, "kind": kind, "time": float(t), "payload": payload}


def _validate(events: list[Any], limit: int) -> tuple[list[dict[str, Any]], list[str]]:
    out, encoded = [], []
    for i, ev in enumerate(events):
        d = _check_event(i, ev)
        try:
            text = json.dumps(d, separators=(",", ":"), allow_nan=False)
        except (ValueError, TypeError):
            check_json_safe(d, f"events.{i}")  # names the offending field
            raise ValueError(f"events.{i}: not representable as JSON") from None
        if "\\u0000" in text:
            check_json_safe(d, f"events.{i}")
        if len(text) > limit:
            raise TooLarge(f"events.{i}: {len(text)} bytes of JSON; one event may hold at most {limit}")
        out.append(d)
        encoded.append(text)
    return out, encoded


def validate_events(events: list[dict[str, Any]], max_event_bytes: int | None = None) -> list[dict[str, Any]]:
    """Check a batch against the event format (docs/events.md); the error names index and field (`events.3.kind`)."""
    return _validate(events, max_event_bytes or get_settings().max_event_bytes)[0]


def _progress_of(payload: dict[str, Any]) -> float | None:
    # `fraction` is what the search writes (nas_core/search/reporting.py); `progress` and epoch/epochs are fallbacks.
    value = payload.get("fraction", payload.get("progress"))
    if value is None and payload.get("epochs"):
        value = payload.get("epoch", 0) / payload["epochs"] if isinstance(payload.get("epoch"), (int, float)) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return min(1.0, max(0.0, float(value)))
    return None


def ingest_events(session: Session, run_id: int, events: list[dict[str, Any]], *, redis: Any = _DEFAULT,
                  max_event_bytes: int | None = None) -> int:
    """Store a batch of events of run `run_id`; a seq already stored is ignored. Returns how many were new.

    Commits, then publishes the new events to the run's and the experiment's Redis stream (redis=None skips that;
    the default is the client for REDIS_URL).
    """
    return ingest_many(session, {run_id: events}, redis=redis, max_event_bytes=max_event_bytes)[run_id]


def ingest_many(session: Session, batches: dict[int, list[dict[str, Any]]], *, redis: Any = _DEFAULT,
                max_event_bytes: int | None = None) -> dict[int, int]:
    """`ingest_events` for several runs in one transaction and one Redis round trip: {run_id: new events}.

    Nothing is stored when any batch is invalid (the error names the run when there are several).
    """
    limit = max_event_bytes or get_settings().max_event_bytes
    # Three columns in one query, not each Run row with its JSON (this runs on every poll).
    found = session.execute(select(_RUNS.c.id, _RUNS.c.experiment_id, _RUNS.c.last_seq)
                            .where(_RUNS.c.id.in_(list(batches)))).all()
    runs = {r.id: r for r in found}
    checked: dict[int, tuple[list[dict[str, Any]], list[str]]] = {}
    for run_id, events in batches.items():
        if run_id not in runs:
            raise NotFound(f"run {run_id} not found")
        try:
            checked[run_id] = _validate(events, limit)
        except ValueError as exc:
            if len(batches) == 1:
                raise
            raise type(exc)(f"run {run_id}: {exc}") from None
    rows = [{"run_id": run_id, "seq": ev["seq"], "kind": ev["kind"], "time": ev["time"], "payload": ev["payload"],
             "extra": {k: v for k, v in ev.items() if k not in _STD} or None}
            for run_id, (batch, _) in checked.items() for ev in batch]
    stored: dict[int, set[int]] = {run_id: set() for run_id in batches}
    if rows:
        dialect = session.get_bind().dialect.name
        insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect)
        if insert is None:
            raise RuntimeError(f"event ingest supports SQLite and PostgreSQL, not {dialect}")
        table = Event.__table__
        stmt = insert(table).on_conflict_do_nothing(index_elements=["run_id", "seq"]).returning(table.c.run_id, table.c.seq)
        for run_id, seq in session.execute(stmt, rows).all():
            stored[run_id].add(seq)
    publish: list[tuple[int, int, list[tuple[int, str]]]] = []
    updates: list[dict[str, Any]] = []
    now = utcnow()
    for run_id, seqs in stored.items():
        if not seqs:
            continue
        batch, encoded = checked[run_id]
        first: dict[int, tuple[dict[str, Any], str]] = {}
        for ev, text in zip(batch, encoded):
            first.setdefault(ev["seq"], (ev, text))  # a seq repeated inside one batch counts once: the first
        new = [first[q] for q in sorted(seqs)]
        progress = None
        for ev, _ in new:
            p = _progress_of(ev["payload"]) if ev["kind"] in _PROGRESS_KINDS else None
            progress = p if p is not None else progress
        top = new[-1][0]["seq"]
        updates.append({"b_id": run_id, "b_at": now, "b_top": top, "b_progress": progress})
        run = runs[run_id]
        held = session.identity_map.get(identity_key(Run, run_id))
        if held is not None:  # keep a caller's Run object current without another SELECT
            for key, value in (("last_event_at", now), ("last_seq", max(run.last_seq, top)), ("progress", progress)):
                if value is not None:
                    set_committed_value(held, key, value)
        publish.append((run_id, run.experiment_id, [(ev["seq"], text) for ev, text in new]))
    if updates:
        session.execute(_RUN_UPDATE, updates)  # one executemany for all runs
    session.commit()
    if publish:
        client = streams.get_redis(get_settings().redis_url) if redis is _DEFAULT else redis
        if client is not None:
            streams.publish_batches(client, publish, maxlen=get_settings().stream_maxlen)
    return {run_id: len(seqs) for run_id, seqs in stored.items()}


def events_since(session: Session, run_id: int, since: int = 0, limit: int = 1000, kind: str | None = None) -> Sequence[Event]:
    q = select(Event).where(Event.run_id == run_id, Event.seq > since)
    if kind:
        q = q.where(Event.kind == kind)
    return session.exec(q.order_by(col(Event.seq)).limit(limit)).all()


# At most this many events of one kind are read per run for a summary (the compare view).
KIND_EVENTS_LIMIT = 5000


def event_seqs(session: Session, run_id: int, kind: str, limit: int = KIND_EVENTS_LIMIT) -> Sequence[int]:
    """The seqs of the run's events of one kind, oldest first."""
    q = select(Event.seq).where(Event.run_id == run_id, Event.kind == kind)
    return session.exec(q.order_by(col(Event.seq)).limit(limit)).all()


def event_payloads(session: Session, run_id: int, kind: str, seqs: Sequence[int] | None = None,
                   limit: int = KIND_EVENTS_LIMIT) -> list[tuple[int, dict[str, Any]]]:
    """(seq, payload) of the run's events of one kind (of those `seqs` if given), oldest first: two columns, not
    whole rows (a compare of 4 x 300 epochs reads thousands, and building an ORM object per row cost more than
    parsing its JSON)."""
    q = select(Event.seq, Event.payload).where(Event.run_id == run_id, Event.kind == kind)
    if seqs is not None:
        q = q.where(col(Event.seq).in_(seqs))
    return [tuple(row) for row in session.exec(q.order_by(col(Event.seq)).limit(limit)).all()]


def event_dict(ev: Event) -> dict[str, Any]:
    """The event as the run's log line holds it, plus run_id."""
    return {"run_id": ev.run_id, "seq": ev.seq, "kind": ev.kind, "time": ev.time, "payload": ev.payload, **(ev.extra or {})}
