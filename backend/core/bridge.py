"""The worker bridge: hands runs to the Celery worker by task name (never by importing worker/)."""
from __future__ import annotations

import threading
import time
from typing import Any

from celery import Celery

LAUNCH_TASK = "nasforge.launch_run"
CANCEL_TASK = "nasforge.cancel_run"
SENSITIVITY_TASK = "nasforge.sensitivity"  # where to search first: `nasforge sensitivity --run-dir` on a finished run


class WorkerBridge:
    def __init__(self, broker_url: str, queue: str | None = None, ping_timeout: float = 1.0, cache_s: float = 2.0):
        self.celery = Celery("nasforge-backend", broker=broker_url)
        # Fail fast: a request handler must not hang retrying a broker that is down.
        self.celery.conf.update(
            broker_connection_retry=False,
            broker_connection_retry_on_startup=False,
            broker_connection_max_retries=0,
            broker_transport_options={"socket_connect_timeout": 2, "socket_timeout": 5, "max_retries": 0},
        )
        self.queue = queue
        self.ping_timeout = ping_timeout
        self.cache_s = cache_s
        self._ping: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def _send(self, name: str, run_id: int) -> str:
        kw: dict[str, Any] = {"queue": self.queue} if self.queue else {}
        return self.celery.send_task(name, args=[run_id], retry=False, **kw).id

    def launch(self, run_id: int) -> str:
        return self._send(LAUNCH_TASK, run_id)

    def cancel(self, run_id: int) -> str:
        return self._send(CANCEL_TASK, run_id)

    def sensitivity(self, run_id: int) -> str:
        return self._send(SENSITIVITY_TASK, run_id)

    def workers(self) -> dict[str, Any]:
        """{"ok", "detail"} from a Celery control.ping; cached briefly so a polled health check stays cheap."""
        with self._lock:
            now = time.monotonic()
            if self._ping and now - self._ping[0] < self.cache_s:
                return self._ping[1]
            try:
                replies = self.celery.control.ping(timeout=self.ping_timeout) or []
                names = sorted(name for reply in replies for name in reply)
                result = {"ok": bool(names), "detail": names if names else "no worker answered the ping"}
            except Exception as exc:  # the broker itself is down: report it, never raise from health
                result = {"ok": False, "detail": f"ping failed: {type(exc).__name__}: {exc}"}
            self._ping = (time.monotonic(), result)
            return result

    def close(self) -> None:
        self.celery.close()
