"""The per-run Redis lock: two workers never act on the same run at once (launch, cancel, sync, tail finish).

Its own module because launch (control), the sweeps (reconcile) and the tasks all take it: none of them should
import another just for the lock.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from backend.core.config import get_settings
from backend.core.streams import get_redis
from worker.settings import get_worker_settings


@contextlib.contextmanager
def run_lock(run_id: int, wait: float | None = 30.0) -> Iterator[bool]:
    """Held while the body runs; yields False when `wait=0` finds it taken, raises TimeoutError after `wait` s.

    It expires on its own (NASFORGE_LOCK_TIMEOUT_S), so a worker killed while holding it blocks no one for long.
    """
    lock = get_redis(get_settings().redis_url).lock(f"nasforge:lock:run:{int(run_id)}",
                                                     timeout=get_worker_settings().lock_timeout_s,
                                                     blocking=wait != 0, blocking_timeout=wait or None)
    got = lock.acquire()
    if not got and wait != 0:
        raise TimeoutError(f"run {run_id} is locked by another worker for more than {wait:.0f} s; the next "
                           "reconciliation will try again")
    try:
        yield got
    finally:
        if got:
            with contextlib.suppress(Exception):  # expired meanwhile: nothing to release
                lock.release()
