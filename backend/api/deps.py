"""Typed dependencies declared once: settings, the database session, the caller and the scope it needs."""
from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from backend.core.bridge import WorkerBridge
from backend.core.config import Settings
from backend.core.security import Principal, authenticate

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
        raise _unauthorized("invalid or revoked token")
    return principal


def get_stream_principal(session: SessionDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                         access_token: Annotated[str | None, Query(max_length=200, description="For EventSource, which cannot send headers.")] = None) -> Principal:
    raw = creds.credentials if creds else access_token
    if not raw:
        raise _unauthorized("missing bearer token: send `Authorization: Bearer <token>` or ?access_token=")
    principal = authenticate(session, raw)
    if principal is None or not principal.has("read"):
        raise _unauthorized("invalid or revoked token") if principal is None else HTTPException(403, "this token lacks the read scope")
    return principal


def require(scope: str):
    def dep(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.has(scope):
            raise HTTPException(403, f"this token lacks the {scope} scope")
        return principal

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
