"""Events: append a batch (the watcher or an ingest token), read since a seq, and follow live by Server-Sent Events."""
from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from backend import crud
from backend.api.deps import AnyToken, Id, Reader, SessionDep, SettingsDep, StreamReader, check_owner
from backend.core.follow import follow_experiment, follow_run, parse_cursor
from backend.core.streams import get_redis
from backend.models import EventIn, EventPublic, IngestResult
from nas_core.events import EVENT_KINDS, pattern

router = APIRouter(tags=["events"])
_SSE = {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
              "description": "`id:` is the resume point (send it back as Last-Event-ID); `data:` one event as JSON."}}
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its `$defs` put in place: OpenAPI resolves `#/$defs/...` from the document's root, not from
    this fragment of a request body."""
    defs = schema.pop("$defs", {})

    def put(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return put(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: put(v) for k, v in node.items()}
        return [put(v) for v in node] if isinstance(node, list) else node
    return put(schema)


_MAX_BATCH = 10000
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "array", "maxItems": _MAX_BATCH, "items": _inlined(EventIn.model_json_schema())}}}}}


async def _event_batch(request: Request) -> list[Any]:
    # Parsed here, checked once in crud.ingest_events: a pydantic pass over every event first would halve
    # the HTTP ingest rate (bench/event_ingest.py) for no gain.
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise HTTPException(400, "body: not valid JSON") from None
    if not isinstance(body, list):
        raise HTTPException(422, "body: a JSON array of events is required")
    if len(body) > _MAX_BATCH:
        raise HTTPException(422, f"body: at most {_MAX_BATCH} events per request")
    return body


@router.post("/runs/{run_id}/events", response_model=IngestResult, openapi_extra=_BODY)
def ingest_events(run_id: Id, session: SessionDep, who: AnyToken, settings: SettingsDep,
                  events: Annotated[list[Any], Depends(_event_batch)]) -> IngestResult:
    """Append events of the run's log (docs/events.md); a seq already stored is ignored (re-sending is safe)."""
    if who.run_id is not None:
        if who.run_id != run_id:
            raise HTTPException(403, f"this ingest token may only append to run {who.run_id}")
    else:
        if not who.has("write"):
            raise HTTPException(403, "appending events needs the write scope or the run's ingest token")
        check_owner(who, crud.get_experiment(session, crud.get_run(session, run_id).experiment_id).owner_id)
    stored = crud.ingest_events(session, run_id, events, redis=get_redis(settings.redis_url),
                                max_event_bytes=settings.max_event_bytes)
    return IngestResult(received=len(events), stored=stored, last_seq=crud.get_run(session, run_id).last_seq)


@router.get("/runs/{run_id}/events", response_model=list[EventPublic])
def read_events(run_id: Id, session: SessionDep, _: Reader,
                since: Annotated[int, Query(ge=0, le=2**31 - 1, description="Events with seq greater than this.")] = 0,
                limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
                kind: Annotated[str | None, Query(pattern=pattern(EVENT_KINDS))] = None,
                ) -> list[EventPublic]:
    crud.get_run(session, run_id)
    return [EventPublic.model_validate(crud.event_dict(e)) for e in crud.events_since(session, run_id, since, limit, kind)]


def _async_redis(request: Request):
    return request.app.state.redis_async


@router.get("/runs/{run_id}/stream", response_class=StreamingResponse, responses=_SSE)
def stream_run(run_id: Id, request: Request, session: SessionDep, _: StreamReader, settings: SettingsDep,
               last_event_id: Annotated[str | None, Header(max_length=40)] = None,
               since: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> StreamingResponse:
    """Every event of the run from `since` (or the Last-Event-ID header), then live; ends with `event: end`
    once the run has finished and everything was sent."""
    crud.get_run(session, run_id)
    if last_event_id:
        if not last_event_id.strip().isdigit():
            raise HTTPException(422, "Last-Event-ID: a run stream resumes from the seq sent as `id:`")
        since = int(last_event_id)
    session.close()  # give the connection back now: the stream may stay open for hours
    gen = follow_run(request.app.state.engine, _async_redis(request), run_id, since,
                     block_ms=settings.sse_block_ms, heartbeat_s=settings.sse_heartbeat_s)
    return StreamingResponse(gen, media_type="text/event-stream", headers=_SSE_HEADERS)


@router.get("/experiments/{experiment_id}/stream", response_class=StreamingResponse, responses=_SSE)
def stream_experiment(experiment_id: Id, request: Request, session: SessionDep, _: StreamReader, settings: SettingsDep,
                      last_event_id: Annotated[str | None, Header(max_length=4000)] = None) -> StreamingResponse:
    """Events of all the experiment's runs, live; `id:` is a cursor `run:seq,...` to resume from."""
    crud.get_experiment(session, experiment_id)
    try:
        cursor = parse_cursor(last_event_id or "")
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    session.close()
    gen = follow_experiment(request.app.state.engine, _async_redis(request), experiment_id, cursor,
                            block_ms=settings.sse_block_ms, heartbeat_s=settings.sse_heartbeat_s)
    return StreamingResponse(gen, media_type="text/event-stream", headers=_SSE_HEADERS)
