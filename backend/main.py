"""The FastAPI application: `uvicorn backend.main:app`. Migrates the schema at start, serves /api and the UI."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from backend import crud
from backend.api.routes import (compare, events, experiments, health, inference, runs, runs_sensitivity, schema, streams,
                                study, users)
from backend.core.bridge import WorkerBridge
from backend.core.config import Settings, get_settings
from backend.core.db import get_engine, run_migrations
from backend.core.redact import install as redact_logs
from backend.frontend import mount_frontend
from backend.models import ErrorResponse

log = logging.getLogger("backend")
ROOT = Path(__file__).resolve().parent.parent
_ERRORS = {code: {"model": ErrorResponse, "description": text} for code, text in (
    (400, "The body is not valid JSON."), (401, "Missing or invalid bearer token."),
    (403, "The token lacks the scope, or the run, for this."),
    (404, "No such resource."), (409, "The resource is in a state that forbids this."),
    (413, "Request body or one event too large."), (422, "Invalid input; the message names the field path."))}


class _BodyLimit:
    """413 before a body larger than the limit is read into memory (Content-Length or counted chunks)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                return await _too_large(self.max_bytes)(scope, receive, send)
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            more = msg.get("more_body", False)
            if size > self.max_bytes:
                return await _too_large(self.max_bytes)(scope, receive, send)
        body = b"".join(chunks)

        async def replay():
            nonlocal body
            out, body = body, b""
            return {"type": "http.request", "body": out, "more_body": False}

        return await self.app(scope, replay, send)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body larger than {limit} bytes (NASFORGE_MAX_BODY_BYTES)"}, status_code=413)


def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:20])
    return JSONResponse({"detail": errors, "message": message}, status_code=422)


def _error(code: int):
    def handler(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "message": str(exc)}, status_code=code)

    return handler


def _internal(request: Request, exc: Exception) -> JSONResponse:
    # The trace goes to the server log only; the client learns nothing about the internals.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error; the server log has the details"}, status_code=500)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    redact_logs("uvicorn.access", "uvicorn.error", "backend")
    engine = get_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        run_migrations(engine)
        app.state.redis_async = redis.asyncio.Redis.from_url(settings.redis_url, socket_connect_timeout=2)
        try:
            yield
        finally:
            await app.state.redis_async.aclose()
            app.state.bridge.close()

    app = FastAPI(title="nasforge", version="0.1.0", lifespan=lifespan,
                  description="Neural architecture search for segmentation: experiments, runs, events, comparison.")
    app.state.settings, app.state.engine = settings, engine
    app.state.bridge = WorkerBridge(settings.redis_url, settings.celery_queue, settings.worker_ping_timeout_s, settings.health_cache_s)
    app.state.redis_async = None

    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(crud.NotFound, _error(404))
    app.add_exception_handler(crud.Conflict, _error(409))
    app.add_exception_handler(crud.TooLarge, _error(413))
    app.add_exception_handler(ValueError, _error(422))
    app.add_exception_handler(Exception, _internal)

    app.include_router(health.router, prefix="/api")
    app.include_router(schema.router, prefix="/api")
    for module in (experiments, runs, runs_sensitivity, inference, events, streams, compare, study, users):
        app.include_router(module.router, prefix="/api", responses=_ERRORS)

    app.add_middleware(_BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_list:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_list, allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type", "Last-Event-ID"])
    frontend = settings.frontend_dir or ROOT / "frontend"
    if (frontend / "index.html").is_file():
        mount_frontend(app, frontend)
    return app


app = create_app()
