"""Live followers behind the SSE endpoints: database catch-up, then Redis Streams, with no gap and no duplicate.

A per-run stream's event id is the event's `seq`. An experiment's stream mixes runs, so its id is a cursor
`run:seq,run:seq` (the last seq sent of each run): resuming from it is exact whatever order runs interleave in.
"""
from __future__ import annotations

import json
import time
from typing import Any, AsyncIterator

import anyio
import redis
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend import crud
from backend.core.streams import entry_events, experiment_stream, run_stream
from backend.models import TERMINAL_STATUSES, Run

_PAGE = 1000


def parse_cursor(value: str) -> dict[int, int]:
    """`12:40,13:7` -> {12: 40, 13: 7}; raises ValueError naming the header on anything else."""
    out: dict[int, int] = {}
    for part in filter(None, value.strip().split(",")):
        run, _, seq = part.partition(":")
        if not (run.isdigit() and seq.isdigit()) or len(run) > 10 or len(seq) > 10:
            raise ValueError("Last-Event-ID: an experiment stream resumes from `run:seq,run:seq` as sent in `id:`")
        out[int(run)] = int(seq)
    return out


def format_cursor(cursor: dict[int, int]) -> str:
    return ",".join(f"{r}:{s}" for r, s in sorted(cursor.items()) if s > 0)


def _sse(data: str, id_: str | None = None, event: str | None = None) -> str:
    head = (f"id: {id_}\n" if id_ is not None else "") + (f"event: {event}\n" if event else "")
    return f"{head}data: {data}\n\n"


def _db_run(engine: Engine, run_id: int, after: int) -> tuple[list[dict[str, Any]], str | None]:
    with Session(engine) as s:
        # Status first, events second: under READ COMMITTED (PostgreSQL) each statement sees a newer snapshot, so
        # every event committed before a final status is then in the list, and `end` never comes too early.
        status = s.exec(select(Run.status).where(Run.id == run_id)).first()
        evs = [crud.event_dict(e) for e in crud.events_since(s, run_id, after, _PAGE)]
        return evs, status


def _db_experiment(engine: Engine, experiment_id: int, cursor: dict[int, int]) -> list[dict[str, Any]]:
    with Session(engine) as s:
        out: list[dict[str, Any]] = []
        for run_id in s.exec(select(Run.id).where(Run.experiment_id == experiment_id).order_by(col(Run.id))).all():
            out += [crud.event_dict(e) for e in crud.events_since(s, run_id, cursor.get(run_id, 0), _PAGE)]
        return out


class _Tail:
    """One Redis stream read from where the database catch-up began: `read` yields (run_id, seq, event JSON) for
    the events after `cursor` (run id -> last seq sent), in order, and returns when the stream is quiet for
    block_ms, fails (then the follower polls the database only), or shows a gap: an event whose predecessor was
    stored but never published, which the next database catch-up fetches."""

    def __init__(self, client: Any, key: str):
        self.client, self.key, self.pos = client, key, None

    async def anchor(self) -> None:
        # Taken before the database catch-up: anything published later is read from here, nothing falls between.
        if self.client is None:
            return
        try:
            last = await self.client.xrevrange(self.key, count=1)
        except redis.RedisError:
            self.client = None
            return
        self.pos = last[0][0].decode() if last else "0-0"

    async def read(self, cursor: dict[int, int], block_ms: int) -> AsyncIterator[tuple[int, int, str]]:
        while True:
            if self.client is None:
                await anyio.sleep(block_ms / 1000)
                return
            try:
                resp = await self.client.xread({self.key: self.pos}, count=500, block=block_ms)
            except redis.RedisError:
                self.client = None
                return
            if not resp:
                return
            for sid, fields in resp[0][1]:
                self.pos = sid
                run_id, items = entry_events(fields)
                for seq, text in items:
                    done = cursor.get(run_id, 0)
                    if seq <= done:
                        continue
                    if seq != done + 1:
                        return
                    cursor[run_id] = seq
                    yield run_id, seq, text


async def follow_run(engine: Engine, client: Any, run_id: int, last: int, *, block_ms: int = 1000,
                     heartbeat_s: float = 15.0, end_when_done: bool = True) -> AsyncIterator[str]:
    tail = _Tail(client, run_stream(run_id))
    yield "retry: 2000\n\n"
    await tail.anchor()
    cursor = {run_id: last}
    wrote = time.monotonic()
    while True:
        # Catch up from the database until it has nothing newer.
        while True:
            evs, status = await anyio.to_thread.run_sync(_db_run, engine, run_id, cursor[run_id])
            for ev in evs:
                yield _sse(json.dumps(ev, separators=(",", ":")), str(ev["seq"]))
                cursor[run_id] = ev["seq"]
            if evs:
                wrote = time.monotonic()
            if len(evs) < _PAGE:
                break
        if status is None:  # the run (its experiment) was deleted meanwhile
            yield _sse(json.dumps({"run_id": run_id, "status": "deleted", "last_seq": cursor[run_id]}), event="end")
            return
        if end_when_done and status in TERMINAL_STATUSES:
            yield _sse(json.dumps({"run_id": run_id, "status": status, "last_seq": cursor[run_id]}), event="end")
            return
        # Then follow Redis until it is quiet (or fails, or shows a gap): then re-check the database.
        async for _, seq, text in tail.read(cursor, block_ms):
            yield _sse(text, str(seq))
            wrote = time.monotonic()
        if time.monotonic() - wrote > heartbeat_s:
            yield ": keepalive\n\n"
            wrote = time.monotonic()


async def follow_experiment(engine: Engine, client: Any, experiment_id: int, cursor: dict[int, int], *,
                            block_ms: int = 1000, heartbeat_s: float = 15.0) -> AsyncIterator[str]:
    tail = _Tail(client, experiment_stream(experiment_id))
    cursor = dict(cursor)
    yield "retry: 2000\n\n"
    await tail.anchor()
    wrote = time.monotonic()
    while True:
        while True:
            evs = await anyio.to_thread.run_sync(_db_experiment, engine, experiment_id, cursor)
            for ev in evs:
                cursor[ev["run_id"]] = ev["seq"]
                yield _sse(json.dumps(ev, separators=(",", ":")), format_cursor(cursor))
            if evs:
                wrote = time.monotonic()
            if len(evs) < _PAGE:
                break
        async for _, _, text in tail.read(cursor, block_ms):
            yield _sse(text, format_cursor(cursor))
            wrote = time.monotonic()
        if time.monotonic() - wrote > heartbeat_s:
            yield ": keepalive\n\n"
            wrote = time.monotonic()
