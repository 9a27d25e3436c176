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
from backend.core.config import get_settings
from backend.core.db import session_scope
from backend.models import Event, Run
from worker.launchers import confine

log = logging.getLogger(__name__)
EVENTS_FILE = "events.jsonl"
_BATCH = 500
_LIVE = ("submitted", "pending", "running", "stale", "preempted")


def tail(session: Session, run: Run, run_dir: Path | None = None) -> int:
    """Store every complete event line past `run.log_offset`; return how many were new (then refresh `run`)."""
    path = Path(run_dir or run.run_dir) / EVENTS_FILE
    offset, stored = run.log_offset, 0
    while True:
        batch, next_offset = _read(path, offset, _BATCH)
        if next_offset == offset:
            return stored
        stored += _ingest(session, run.id, batch)
        _advance(session, run.id, next_offset)
        offset = next_offset


def tail_active() -> dict[str, int]:
    """The fast path between reconciliations: store new events of every live run whose log has grown.

    One stat per run when nothing changed, so it can run every second or two; a run whose search wrote its
    final `status` is reconciled at once rather than at the next sweep.
    """
    from worker.control import run_lock
    from worker.reconcile import sync_run

    counts = {"runs": 0, "events": 0, "finished": 0}
    with session_scope() as session:
        runs = session.exec(select(Run).where(col(Run.status).in_(_LIVE))).all()
        for run in runs:
            counts["runs"] += 1
            try:
                run_dir = confine(run.run_dir, get_settings().runs_dir)
                if (run_dir / EVENTS_FILE).stat().st_size <= run.log_offset:
                    continue
                counts["events"] += tail(session, run, run_dir)
                if (last_status(session, run.id) or {}).get("state") in ("succeeded", "failed"):
                    with run_lock(run.id, wait=0) as got:
                        if got:
                            session.refresh(run)
                            sync_run(session, run)
                            counts["finished"] += 1
            except (OSError, ValueError):
                continue  # no log yet, or a run dir the reconciler will fail with its reason
            except Exception:
                session.rollback()
                log.exception("tail_active: run %s", run.id)
    return counts


def last_status(session: Session, run_id: int) -> dict[str, Any] | None:
    """The payload of the run's last `status` event, the search's own word on how it ended."""
    ev = session.exec(select(Event).where(Event.run_id == run_id, Event.kind == "status")
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
    for name in ("stdout.log", "stderr.log", "launch.json") if run_dir else ():
        try:
            stamp = max(stamp, (run_dir / name).stat().st_mtime)
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
