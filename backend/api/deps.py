"""Typed dependencies declared once: settings, the database session, the caller and the scope it needs."""
from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from backend.core.bridge import WorkerBridge
from backend.core.config import Settings
from backend.core.security import Principal, authenticate, principal_of
from backend.core.streams import get_redis
from backend.core.tickets import redeem_ticket
from backend.models import ApiToken

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer nf_...` (an API or ingest token)")
# Ids are int4 in PostgreSQL: larger values are simply not found, never a database error.
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


def get_bridge(request: Request) -> WorkerBridge:
    return request.app.state.bridge


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
BridgeDep = Annotated[WorkerBridge, Depends(get_bridge)]


def _unauthorized(msg: str) -> HTTPException:
    return HTTPException(401, msg, headers={"WWW-Authenticate": "Bearer"})


def get_principal(session: SessionDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    if creds is None:
        raise _unauthorized("missing bearer token: send `Authorization: Bearer <token>`")
    principal = authenticate(session, creds.credentials)
    if principal is None:
        raise _unauthorized("invalid, revoked or expired token: create a new one (POST /api/tokens) or ask an admin")
    return principal


def get_stream_principal(request: Request, session: SessionDep, settings: SettingsDep,
                         creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                         ticket: Annotated[str | None, Query(max_length=100, description="A stream ticket (POST /api/streams/ticket) "
                                                             "for this path: EventSource cannot send headers.")] = None) -> Principal:
    """The bearer header, or a ticket made for exactly this stream; a bearer token in the query is not accepted."""
    if creds is not None:
        principal = authenticate(session, creds.credentials)
    elif ticket:
        token_id = redeem_ticket(get_redis(settings.redis_url), ticket, request.url.path)
        row = session.get(ApiToken, token_id) if token_id is not None else None
        principal = principal_of(session, row) if row is not None else None
    else:
        raise _unauthorized("missing credentials: send `Authorization: Bearer <token>` or ?ticket= from POST /api/streams/ticket")
    if principal is None:
        raise _unauthorized("invalid, expired or revoked token or ticket")
    if not principal.has("read"):
        raise HTTPException(403, "this token lacks the read scope")
    return principal


def require(scope: str):
    def dep(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.has(scope):
            raise HTTPException(403, f"this token lacks the {scope} scope")
        return principal

    dep.scope = scope  # read back by backend/api/access.py, which tabulates what each route needs
    return dep


AnyToken = Annotated[Principal, Depends(get_principal)]
Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
Admin = Annotated[Principal, Depends(require("admin"))]
StreamReader = Annotated[Principal, Depends(get_stream_principal)]


def check_owner(principal: Principal, owner_id: int | None) -> None:
    """Writers change their own experiments; admins change any."""
    if not principal.has("admin") and owner_id is not None and owner_id != principal.user_id:
        raise HTTPException(403, "only the experiment's owner or an admin can change it")
