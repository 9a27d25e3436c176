"""Health of the database, Redis, the Celery workers and (under `make run`) the supervised services with their
restart counts; 200 when all are ok, else 503. No token needed."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlmodel import Session

from backend.core.streams import get_redis
from backend.models import Health, HealthPart
from nas_core.rundir import read_json

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


def _services(path) -> HealthPart | None:
    """None when nothing supervises the services (tests, docker-compose); not ok when one was given up on."""
    services = (read_json(path) or {}).get("services") if path.exists() else None
    if services is None:
        return None
    given_up = sorted(name for name, svc in services.items() if svc.get("state") == "FATAL")
    return HealthPart(ok=not given_up, detail=services)


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "Some part is down."}})
def health(request: Request) -> JSONResponse:
    state = request.app.state
    db, rd = _database(state.engine), _redis(state.settings.redis_url)
    workers = HealthPart(**state.bridge.workers()) if rd.ok else HealthPart(ok=False, detail="Redis is down, so no worker can be reached")
    services = _services(state.settings.services_path)
    h = Health(ok=db.ok and rd.ok and workers.ok and (services is None or services.ok), database=db, redis=rd,
               workers=workers, services=services)
    return JSONResponse(h.model_dump(mode="json"), status_code=200 if h.ok else 503)


@router.get("/health/services", response_model=HealthPart | None)
def services(request: Request) -> HealthPart | None:
    """The supervised services alone, for the UI's header: 200 whatever the rest of the platform's health, so a
    page does not log a failed load while a worker is away (null when nothing supervises them)."""
    return _services(request.app.state.settings.services_path)
