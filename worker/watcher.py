"""Tails a run's event log by byte offset into the database (which publishes to the SSE streams).

Exactly once, whatever dies: events are stored idempotently on (run_id, seq) first, the offset is advanced
after, so a worker killed in between re-reads a few lines that the database then ignores.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from backend import crud
from backend.models import Event, Run
from nas_core.events import EventKind
from nas_core.rundir import RunDir

log = logging.getLogger(__name__)
_BATCH = 500


def tail(session: Session, run: Run, run_dir: Path | None = None) -> int:
    """Store every complete event line past `run.log_offset`; return how many were new (then refresh `run`)."""
    path = RunDir(run_dir or run.run_dir).events
    offset, stored = run.log_offset, 0
    while True:
        batch, next_offset = _read(path, offset, _BATCH)
        if next_offset == offset:
            return stored
        stored += _ingest(session, run.id, batch)
        _advance(session, run.id, next_offset)
        offset = next_offset


def last_status(session: Session, run_id: int) -> dict[str, Any] | None:
    """The payload of the run's last `status` event, the search's own word on how it ended."""
    ev = session.exec(select(Event).where(Event.run_id == run_id, Event.kind == EventKind.status)
                      .order_by(col(Event.seq).desc()).limit(1)).first()
    return ev.payload if ev else None


def silent_for(run: Run, run_dir: Path | None = None, now: dt.datetime | None = None) -> float:
    """Seconds since the run last showed life: an event, or any output of its current job.

    The job's own files count too, so a run requeued after a long wait is not called stale before its new
    attempt has had time to write its first event.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    last = run.last_event_at or run.started_at or run.created_at
    if last.tzinfo is None:  # SQLite hands back naive datetimes
        last = last.replace(tzinfo=dt.timezone.utc)
    stamp = last.timestamp()
    rd = RunDir(run_dir) if run_dir else None
    for path in (rd.stdout, rd.stderr, rd.launch_record) if rd else ():
        try:
            stamp = max(stamp, path.stat().st_mtime)
        except OSError:
            pass
    return now.timestamp() - stamp


def _read(path: Path, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Up to `limit` complete lines from `offset`; a partial last line waits for its newline."""
    events: list[dict[str, Any]] = []
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return events, offset
    with fh:
        fh.seek(offset)
        for line in fh:
            if not line.endswith(b"\n"):
                break
            offset += len(line)
            try:
                events.append(json.loads(line))
            except ValueError:
                log.warning("%s: skipping a line that is not JSON at byte %d", path, offset - len(line))
            if len(events) >= limit:
                break
    return events, offset


def _ingest(session: Session, run_id: int, events: list[dict[str, Any]]) -> int:
    if not events:
        return 0
    try:
        return crud.ingest_events(session, run_id, events)
    except ValueError:
        session.rollback()
    # One bad event must not hold back the rest of the log: store the good ones, say which were dropped.
    stored = 0
    for ev in events:
        try:
            stored += crud.ingest_events(session, run_id, [ev])
        except ValueError as exc:
            session.rollback()
            log.warning("run %s: dropping an event that does not fit the event format: %s", run_id, exc)
    return stored


def _advance(session: Session, run_id: int, offset: int) -> None:
    # Only forward: two watchers racing on one run can never move the offset back.
    session.execute(update(Run).where(Run.id == run_id, col(Run.log_offset) < offset).values(log_offset=offset))
    session.commit()
