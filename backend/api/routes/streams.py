"""Stream tickets: the browser's EventSource authenticates by a short-lived ticket for one stream, never by
its bearer token in the URL (backend/core/tickets.py says why)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from backend.api.access import is_stream_path
from backend.api.deps import Reader, SettingsDep
from backend.core.streams import get_redis
from backend.core.tickets import issue_ticket
from backend.models import StreamTicket, StreamTicketCreate

router = APIRouter(tags=["events"])


@router.post("/streams/ticket", status_code=201, response_model=StreamTicket)
def create_ticket(body: StreamTicketCreate, request: Request, who: Reader, settings: SettingsDep) -> StreamTicket:
    """A ticket that opens `path` (a run's or an experiment's stream) for a minute: send it as `?ticket=`."""
    if not is_stream_path(request.app, body.path):
        raise HTTPException(422, f"path: not a stream of this API (e.g. /api/runs/1/stream), got {body.path[:200]!r}")
    ticket = issue_ticket(get_redis(settings.redis_url), who.token_id, body.path, settings.stream_ticket_s)
    return StreamTicket(ticket=ticket, path=body.path, expires_in=settings.stream_ticket_s)
