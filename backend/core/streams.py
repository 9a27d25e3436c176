"""Redis Streams that carry stored events live to SSE clients: one stream per run, one per experiment.

The database stays the record; a stream entry is only a fast path, so a lost publish delays an event
(readers re-check the database when Redis is quiet) but never loses it.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any, Iterable

import redis

log = logging.getLogger(__name__)
_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def run_stream(run_id: int) -> str:
    return f"nasforge:events:{run_id}"


def experiment_stream(experiment_id: int) -> str:
    return f"nasforge:events:experiment:{experiment_id}"


def get_redis(url: str) -> redis.Redis:
    with _lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
        return _clients[url]


def encode_event(run_id: int, event: dict[str, Any]) -> str:
    return json.dumps({"run_id": run_id, **event}, separators=(",", ":"))


def publish_events(client: redis.Redis, run_id: int, experiment_id: int, events: Iterable[dict[str, Any]],
                   maxlen: int = 10000) -> bool:
    """XADD each event to both streams in one round trip; returns False (and logs) when Redis is unreachable."""
    try:
        pipe = client.pipeline(transaction=False)
        for ev in events:
            fields = {"run_id": run_id, "seq": ev["seq"], "data": encode_event(run_id, ev)}
            pipe.xadd(run_stream(run_id), fields, maxlen=maxlen, approximate=True)
            pipe.xadd(experiment_stream(experiment_id), fields, maxlen=maxlen, approximate=True)
        pipe.execute()
        return True
    except redis.RedisError as exc:
        log.warning("could not publish events of run %s to Redis: %s", run_id, exc)
        return False
