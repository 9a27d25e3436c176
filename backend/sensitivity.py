"""'Where to search first' on a finished run: which runs it applies to, the task that measures one, and where its
state is kept while it runs. The API route and the worker's task both read it from here.

The result itself is the run directory's (RUN/sensitivity.json, written by `nasforge sensitivity --run-dir`); its
`sensitivity` event reaches the database through the watcher's tail, as every event of the run does. While the
task runs, its state (queued, running, or failed with the reason) is a short-lived Redis key of the run.
"""
from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

from redis.exceptions import WatchError

from backend.core.config import Settings
from backend.core.streams import get_redis
from backend.errors import Conflict, NotFound
from backend.models import Run, RunStatus
from nas_core.models.hand_designed import NetworkConfig
from nas_core.rundir import RunDir, read_json

# How long a state outlives its last change: a worker that died mid-measure frees the button after this.
STATE_TTL_S = 6 * 3600


class SensitivityState(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


# States in which a second request would measure the same run twice.
BUSY = frozenset({SensitivityState.queued, SensitivityState.running})


def _key(run_id: int) -> str:
    return f"nasforge:sensitivity:run:{int(run_id)}"


def run_dir_of(run: Run, settings: Settings) -> Path:
    """The run's directory, refused unless it lies inside the runs folder (a stored path is not trusted)."""
    root = settings.runs_dir.resolve()
    path = Path(run.run_dir or "").resolve()
    if not run.run_dir or root not in path.parents:
        raise NotFound(f"run {run.id} has no run directory inside the runs folder")
    return path


def network_of(run: Run) -> NetworkConfig | None:
    """The hand-designed network the run trained (a baseline of its experiment's baseline.networks), or None."""
    if not run.network:
        return None
    return NetworkConfig.model_validate({k: v for k, v in run.network.items() if k != "label"})


def check_applies(run: Run, settings: Settings) -> NetworkConfig:
    """The run's network, or the reason this run cannot be measured: Conflict (409) for a state that may change
    (not succeeded yet, no weights), ValueError (422) for a run that will never have a hand-designed network."""
    network = network_of(run)
    if network is None:
        raise ValueError(f"run {run.id} is a {run.kind} run without a hand-designed network: 'where to search first' "
                         "measures a succeeded baseline run of a hand-designed network (an experiment's "
                         "baseline.networks); open one of those runs")
    if run.status != RunStatus.succeeded:
        raise Conflict(f"run {run.id} is {run.status}: 'where to search first' measures the trained network of a "
                       "succeeded run; wait until it has succeeded")
    if not RunDir(run_dir_of(run, settings)).retrained.is_file():
        raise Conflict(f"run {run.id} has no checkpoints/retrain.pt: its retrain stage left no weights to measure")
    return network


def read_state(settings: Settings, run_id: int) -> dict[str, Any] | None:
    raw = get_redis(settings.redis_url).get(_key(run_id))
    return json.loads(raw) if raw else None


def write_state(settings: Settings, run_id: int, state: SensitivityState, reason: str = "",
                extra: dict[str, Any] | None = None) -> None:
    """`extra`: what the worker keeps to follow the command (its pid and start time)."""
    value = json.dumps({**(extra or {}), "state": str(state), "reason": reason[:4000], "since": time.time()})
    get_redis(settings.redis_url).set(_key(run_id), value, ex=STATE_TTL_S)


def claim(settings: Settings, run_id: int) -> bool:
    """Mark the run queued unless a measure of it is queued or running already (atomically); False then."""
    client = get_redis(settings.redis_url)
    value = json.dumps({"state": str(SensitivityState.queued), "reason": "", "since": time.time()})
    with client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(_key(run_id))
                raw = pipe.get(_key(run_id))
                if raw and json.loads(raw).get("state") in BUSY:
                    pipe.reset()
                    return False
                pipe.multi()
                pipe.set(_key(run_id), value, ex=STATE_TTL_S)
                pipe.execute()
                return True
            except WatchError:  # another request changed it between the read and the write: read again
                continue


def result_of(run: Run, settings: Settings) -> dict[str, Any] | None:
    """RUN/sensitivity.json, or None when the run has none yet."""
    try:
        return read_json(RunDir(run_dir_of(run, settings)).sensitivity)
    except NotFound:
        return None
