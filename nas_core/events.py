"""The run's event log: one JSON object per line, append-only, with a monotonic `seq`.

This is the one event format of the platform, from the search process to the browser (docs/events.md).
A writer that restarts (resume after a kill) continues after the last complete line: a torn last line
is cut off, so no event is lost or doubled.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

EVENT_KINDS = ("alpha", "metric", "genotype", "candidate", "evaluation", "log", "status", "progress", "heartbeat")


class EventLog:
    """Appends events to `path`; reopening continues the sequence where the file ends."""

    def __init__(self, path: str | os.PathLike, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.seq = _repair_and_last_seq(self.path)
        self._fh = open(self.path, "ab")

    def append(self, kind: str, payload: dict[str, Any] | None = None, **extra: Any) -> int:
        if kind not in EVENT_KINDS:
            raise ValueError(f"event kind {kind!r} is not one of {', '.join(EVENT_KINDS)}")
        self.seq += 1
        event = {"seq": self.seq, "time": time.time(), "kind": kind, "payload": payload or {}}
        event.update(extra)
        line = json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n"
        # One write call per line: a reader never sees half an event followed by another event.
        self._fh.write(line.encode())
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        return self.seq

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _repair_and_last_seq(path: Path) -> int:
    """Drop a torn (unterminated) last line and return the last complete event's seq."""
    if not path.exists():
        return 0
    with open(path, "rb+") as fh:
        data = fh.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            fh.truncate(end)
        data = data[:end]
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return json.loads(last)["seq"] if last else 0


def read_events(path: str | os.PathLike, offset: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (next_offset, event) for each complete line from byte `offset`; a partial last line waits."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        for line in fh:
            if not line.endswith(b"\n"):
                return
            offset += len(line)
            yield offset, json.loads(line)
