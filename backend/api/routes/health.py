"""Health of the database, Redis and the Celery workers; 200 when all are ok, else 503. No token needed."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlmodel import Session

from backend.core.streams import get_redis
from backend.models import Health, HealthPart

router = APIRouter(tags=["health"])


def _database(engine) -> HealthPart:
    try:
        with Session(engine) as s:
            s.exec(text("SELECT 1"))
        return HealthPart(ok=True, detail=engine.dialect.name)
    except Exception as exc:
        return HealthPart(ok=False, detail=f"{type(exc).__name__}: {exc}"[:300])


def _redis(url: str) -> HealthPart:
    try:
        get_redis(url).ping()
        return HealthPart(ok=True, detail="pong")
    except Exception as exc:
        return HealthPart(ok=False, detail=f"{type(exc).__name__}: {exc}"[:300])


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "Some part is down."}})
def health(request: Request) -> JSONResponse:
    state = request.app.state
    db, rd = _database(state.engine), _redis(state.settings.redis_url)
    workers = HealthPart(**state.bridge.workers()) if rd.ok else HealthPart(ok=False, detail="Redis is down, so no worker can be reached")
    h = Health(ok=db.ok and rd.ok and workers.ok, database=db, redis=rd, workers=workers)
    return JSONResponse(h.model_dump(mode="json"), status_code=200 if h.ok else 503)
