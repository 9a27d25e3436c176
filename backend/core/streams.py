"""Redis Streams that carry stored events live to SSE clients: one stream per run, one per experiment.

The database stays the record; a stream entry is only a fast path, so a lost publish delays an event
(readers re-check the database when Redis is quiet) but never loses it.
"""
from __future__ import annotations

import logging
import threading
import time

import redis

log = logging.getLogger(__name__)
_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()
_down_until: dict[int, float] = {}
_RETRY_AFTER_S = 5.0


def run_stream(run_id: int) -> str:
    return f"nasforge:events:{run_id}"


def experiment_stream(experiment_id: int) -> str:
    return f"nasforge:events:experiment:{experiment_id}"


def get_redis(url: str) -> redis.Redis:
    with _lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
        return _clients[url]


def publish_batches(client: redis.Redis, batches: list[tuple[int, int, list[tuple[int, str]]]], maxlen: int = 10000) -> bool:
    """For each (run_id, experiment_id, [(seq, event JSON), ...]): one entry on the run's and on the experiment's
    stream, all in one round trip. False (and a log line) when Redis is down.

    Entry fields: `run_id`, `seqs` (comma-separated) and `data` (the events' JSON, one per line, each with
    run_id added): a reader forwards lines as they are, without parsing them.
    """
    batches = [b for b in batches if b[2]]
    if not batches:
        return True
    key = id(client)
    if _down_until.get(key, 0) > time.monotonic():
        return False  # Redis failed a moment ago: do not make every ingest wait for the connect timeout
    try:
        pipe = client.pipeline(transaction=False)
        for run_id, experiment_id, events in batches:
            prefix = '{"run_id":%d,' % run_id
            fields = {"run_id": run_id, "seqs": ",".join(str(q) for q, _ in events),
                      "data": "\n".join(prefix + text[1:] for _, text in events)}
            pipe.xadd(run_stream(run_id), fields, maxlen=maxlen, approximate=True)
            pipe.xadd(experiment_stream(experiment_id), fields, maxlen=maxlen, approximate=True)
        pipe.execute()
        return True
    except redis.RedisError as exc:
        _down_until[key] = time.monotonic() + _RETRY_AFTER_S
        log.warning("could not publish events to Redis (retrying in %.0f s; readers fall back to the database): %s",
                    _RETRY_AFTER_S, exc)
        return False


def entry_events(fields: dict[bytes, bytes]) -> tuple[int, list[tuple[int, str]]]:
    """(run_id, [(seq, event JSON), ...]) of one stream entry written by publish_batch."""
    seqs = [int(q) for q in fields[b"seqs"].split(b",")]
    return int(fields[b"run_id"]), list(zip(seqs, fields[b"data"].decode().split("\n")))
