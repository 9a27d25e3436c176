"""Names the rank that died or stalled. Every rank records its last finished step in a small file, and marks
itself as waiting when a collective takes long; when the wait passes the timeout, the survivors read those
files, say which rank is not waiting with them, and end the run instead of hanging."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from nas_core.rundir import write_json


class RankFailure(RuntimeError):
    """A peer rank died or stalled; the message names it."""


class Heartbeats:
    def __init__(self, directory: str | os.PathLike, rank: int, world_size: int):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rank, self.world_size = rank, world_size
        self.step = -1
        self._write(waiting=None)

    def _path(self, rank: int) -> Path:
        return self.dir / f"rank-{rank}.json"

    def _write(self, waiting: float | None) -> None:
        # Rewritten every step: atomic for the other ranks' reads, not fsynced (the next beat supersedes a lost one).
        # The host with the pid: on several nodes a pid alone does not say where to look.
        write_json(self._path(self.rank), {"step": self.step, "time": time.time(), "pid": os.getpid(),
                                           "host": socket.gethostname(), "waiting": waiting}, indent=None,
                   durable=False)

    def beat(self, step: int) -> None:
        self.step = step
        self._write(waiting=None)

    def mark_waiting(self) -> None:
        self._write(waiting=time.time())

    def laggards(self) -> list[tuple[int, str]]:
        """Ranks that are not waiting in the collective with us (dead, stalled or behind), with what is known."""
        now, out = time.time(), []
        for r in range(self.world_size):
            if r == self.rank:
                continue
            try:
                s = json.loads(self._path(r).read_text())
            except (OSError, ValueError):
                out.append((r, "never reported"))
                continue
            if not s.get("waiting") or s["step"] < self.step:
                out.append((r, f"not in the collective; last finished step {s['step']}, "
                               f"last seen {now - s['time']:.0f} s ago (pid {s['pid']} on {s.get('host', '?')})"))
        return out

    def failure(self, exc: BaseException) -> RankFailure:
        lagging = self.laggards()
        if lagging:
            names = "; ".join(f"rank {r}: {why}" for r, why in lagging)
            return RankFailure(f"rank {self.rank}: a collective failed because a peer died or stalled ({names}): {exc}")
        return RankFailure(f"rank {self.rank}: a collective failed ({exc})")


class Watchdog:
    """A daemon thread that ends this process when one collective waits longer than `timeout_s`.

    Engines' own timeouts differ (Gloo has one, Horovod's stall check only warns by default); this one bound holds
    for all of them, and the launcher (torchrun, mpirun, horovodrun, srun) then ends the other ranks.
    """

    def __init__(self, heartbeats: Heartbeats, timeout_s: float):
        self.heartbeats, self.timeout_s = heartbeats, timeout_s
        self._since: float | None = None
        threading.Thread(target=self._run, name="nasforge-rank-watchdog", daemon=True).start()

    @contextlib.contextmanager
    def waiting(self):
        self._since = time.monotonic()
        try:
            yield
        finally:
            self._since = None

    def _run(self) -> None:
        marked = None
        while True:
            time.sleep(min(1.0, self.timeout_s / 10))
            since = self._since
            if since is None:
                continue
            waited = time.monotonic() - since
            if waited > self.timeout_s / 3 and marked != since:
                self.heartbeats.mark_waiting()  # lets the others tell a waiting rank from a stalled one
                marked = since
            if waited > self.timeout_s:
                err = self.heartbeats.failure(TimeoutError(f"no progress for {self.timeout_s:.0f} s"))
                print(f"nasforge: {err}", file=sys.stderr, flush=True)
                os._exit(75)
