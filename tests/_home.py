"""Points this test process (and the workers it starts) at a fresh platform home: data directory, database,
Redis database and search command, restored afterwards. Shared by the worker and baseline tests."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from deploy.local import ROOT


@contextlib.contextmanager
def platform_home(home: Path, redis_url: str, search_command: str, **extra: str) -> Iterator[dict]:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    env = {
        "NASFORGE_DATA_DIR": str(home),
        "REDIS_URL": redis_url,
        "NASFORGE_SEARCH_COMMAND": search_command,
        "NASFORGE_RECONCILE_INTERVAL_S": "1",
        "NASFORGE_LOCK_TIMEOUT_S": "5",
        "NASFORGE_CANCEL_GRACE_S": "3",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    clear_settings_caches()
    from backend.core.db import get_engine, run_migrations

    run_migrations(get_engine())
    try:
        yield {"home": home, "env": env}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        clear_settings_caches()


def clear_settings_caches() -> None:
    from backend.core.config import get_settings
    from worker.settings import get_worker_settings

    get_settings.cache_clear()
    get_worker_settings.cache_clear()
