"""The run's event log: one JSON object per line, append-only, with a monotonic `seq`.

This is the one event format of the platform, from the search process to the browser (docs/events.md).
A writer that restarts (resume after a kill) continues after the last complete line: a torn last line
is cut off, so no event is lost or doubled.
"""
from __future__ import annotations

import json
import os
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field


class EventKind(StrEnum):
    """What an event says; its payload's shape is per kind (nas_core/search/event_schema.py)."""

    alpha = "alpha"
    metric = "metric"
    genotype = "genotype"
    candidate = "candidate"
    evaluation = "evaluation"
    log = "log"
    status = "status"
    progress = "progress"
    heartbeat = "heartbeat"
    sensitivity = "sensitivity"


class StatusState(StrEnum):
    """The `state` of a `status` event. Only `succeeded` and `failed` end a run; the rest say where it is."""

    running = "running"
    resumed = "resumed"
    done = "done"
    succeeded = "succeeded"
    failed = "failed"


# What each name means: docs/events.md's tables are generated from these (nas_core/contract_docs.py).
MEANING = {
    EventKind.alpha: "architecture weights (alpha, beta) of every cell, as used in the forward pass",
    EventKind.metric: "losses and IoU of an epoch (search or retrain)",
    EventKind.genotype: "a decoded cell: per epoch, the decode stage's result, or a retrain run's given genotype",
    EventKind.candidate: "a discrete search's trained (or pre-screened) candidate",
    EventKind.evaluation: "test metrics and precision-recall curves",
    EventKind.log: "a line for the user",
    EventKind.status: "the run's own word on its state (`state` below)",
    EventKind.progress: "fraction done and ETA of the current stage",
    EventKind.heartbeat: "nothing to say, still alive (at least every HEARTBEAT_S)",
    EventKind.sensitivity: "where to search first: the named blocks of a trained network ranked by room "
                           "(`nasforge sensitivity`, RUN/sensitivity.json)",
    StatusState.running: "a stage starts (`stage`), or a discrete search starts its trials",
    StatusState.resumed: "a discrete search restarts from its checkpoint",
    StatusState.done: "a discrete search's trials are over; its retrain and evaluate stages follow",
    StatusState.succeeded: "the run's last event when it ends well (exit code 0)",
    StatusState.failed: "the run's last event when it ends badly, with `error`",
}


EVENT_KINDS = tuple(EventKind)
FINAL_STATES = frozenset({StatusState.succeeded, StatusState.failed})
# A live search writes an event at least this often; the watcher calls a run stale after STALE_AFTER_S without one
# (twelve missed beats: a loaded machine delays a beat, it does not skip twelve).
HEARTBEAT_S = 10.0
STALE_AFTER_S = 12 * HEARTBEAT_S


class Event(BaseModel):
    """The envelope of every event. Keys beyond these four are kept as they are (a writer may add its own)."""

    model_config = ConfigDict(extra="allow")
    seq: int = Field(ge=1, le=2**31 - 1, description="1, 2, 3... in the run's log: no gap, no repeat.")
    time: float = Field(ge=0, le=1e11, description="Unix time of writing.")
    kind: EventKind
    payload: dict[str, Any] = Field(default_factory=dict)


def pattern(names: Any) -> str:
    """A regex that matches exactly one of `names` (for route parameters generated from the definitions)."""
    return "^(" + "|".join(str(n) for n in names) + ")$"


class EventLog:
    """Appends events to `path`; reopening continues the sequence where the file ends. Thread-safe.

    `heartbeat_s` > 0: a thread appends a `heartbeat` whenever nothing was written for that long, so the
    watcher can tell a long silent stretch (a trial, a retrain epoch) from a dead run.
    """

    def __init__(self, path: str | os.PathLike, fsync: bool = True, heartbeat_s: float = 0.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.seq = _repair_and_last_seq(self.path)
        self._fh = open(self.path, "ab")
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._beat = None
        if heartbeat_s > 0:
            self._beat = threading.Thread(target=self._heartbeat, args=(heartbeat_s,), daemon=True,
                                          name="nasforge-heartbeat")
            self._beat.start()

    def append(self, kind: str, payload: dict[str, Any] | None = None, **extra: Any) -> int:
        if kind not in EVENT_KINDS:
            raise ValueError(f"event kind {kind!r} is not one of {', '.join(EVENT_KINDS)}")
        with self._lock:
            self.seq += 1
            event = {"seq": self.seq, "time": time.time(), "kind": str(kind), "payload": payload or {}}
            event.update(extra)
            line = json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n"
            # One write call per line: a reader never sees half an event followed by another event.
            self._fh.write(line.encode())
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
            self._last = time.monotonic()
            return self.seq

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(min(every, 1.0)):
            if time.monotonic() - self._last >= every:
                self.append(EventKind.heartbeat, {})

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join()
        with self._lock:
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
