"""Server settings from the environment: `NASFORGE_*`, plus the conventional `DATABASE_URL` and `REDIS_URL`."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO_ROOT = Path(__file__).resolve().parents[2]
# Under `make run`, the state and restart count of each supervised service (deploy/supervise.py writes it).
SERVICES_FILE = "services.json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NASFORGE_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(Path("./var"), description="SQLite file and run directories live here.")
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "NASFORGE_DATABASE_URL"),
        description="SQLAlchemy URL; default sqlite:///DATA_DIR/nasforge.db in WAL mode.",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "NASFORGE_REDIS_URL")
    )
    cors_origins: str = Field("", description="Comma-separated allowed origins; empty keeps CORS off.")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Larger request bodies get 413.")
    max_event_bytes: int = Field(1024 * 1024, ge=256, description="One event's JSON larger than this gets 413.")
    stream_maxlen: int = Field(10000, ge=100, description="Approximate length cap of each Redis event stream.")
    sse_block_ms: int = Field(1000, ge=10, description="How long an SSE reader blocks on Redis before re-checking the database.")
    sse_heartbeat_s: float = Field(15.0, gt=0)
    worker_ping_timeout_s: float = Field(1.0, gt=0, description="Celery control.ping timeout used by /api/health.")
    health_cache_s: float = Field(2.0, ge=0, description="Worker ping results are reused this long.")
    celery_queue: str | None = Field(None, description="Queue for launch/cancel tasks; default: Celery's default queue.")
    frontend_dir: Path | None = Field(None, description="Static UI folder; default: frontend/ at the repo root.")
    data_roots_env: str = Field(
        "", validation_alias=AliasChoices("NASFORGE_DATA_ROOTS", "data_roots"),
        description="Folders (separated by os.pathsep) a data.path must lie in; default: DATA_DIR/data and "
                    "../shared/data beside the repo when it exists.",
    )
    max_tokens_per_user: int = Field(50, ge=1, description="Live (unrevoked, unexpired) API tokens one user may hold.")
    stream_ticket_s: int = Field(60, ge=5, le=3600, description="Lifetime of a stream ticket (EventSource auth).")

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'nasforge.db').resolve()}"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def services_path(self) -> Path:
        return self.data_dir / SERVICES_FILE

    @property
    def data_roots(self) -> list[Path]:
        if self.data_roots_env.strip():
            return [Path(p) for p in self.data_roots_env.split(os.pathsep) if p.strip()]
        shared = _REPO_ROOT.parent / "shared" / "data"
        return [self.data_dir / "data", *([shared] if shared.is_dir() else [])]

    @property
    def cors_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
