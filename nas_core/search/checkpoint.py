"""The search's checkpoint: everything that decides the rest of the run (weights, alpha/beta, optimisers,
schedulers, RNG states, epoch, step, last event seq), written atomically so a kill leaves the old or the new one."""
from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_core.rundir import write_atomic

VERSION = 1


def rng_state() -> dict[str, Any]:
    """The RNG states of Python, NumPy and torch (CPU and every CUDA device), in plain types and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": _listify(random.getstate()),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tuplify(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _listify(x):
    return [_listify(v) for v in x] if isinstance(x, (tuple, list)) else x


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, list) else x


def fingerprint(config: dict[str, Any]) -> str:
    """What a checkpoint must agree with to be resumed: the parts of the experiment that shape the computation."""
    keep = {k: config.get(k) for k in ("seed", "space", "data", "search")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write `state` (plus version and RNG states) to `path` atomically: temp file, fsync, rename, fsync dir."""
    payload = {"version": VERSION, "rng": rng_state(), **state}
    write_atomic(path, lambda fh: torch.save(payload, fh))


def load_checkpoint(path: str | os.PathLike, expect_fingerprint: str | None = None) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; refuses one of another version or another experiment."""
    path = Path(path)
    try:
        # weights_only: a checkpoint is data, never code, even if someone swapped the file.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no checkpoint to resume from; run without --resume to start") from None
    except Exception as exc:  # torch raises several types for a damaged file
        raise ValueError(f"{path}: unreadable checkpoint ({exc}); delete it to start the search over") from None
    if state.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint version {state.get('version')} is not {VERSION}; start the run over")
    if expect_fingerprint is not None and state.get("fingerprint") != expect_fingerprint:
        raise ValueError(
            f"{path}: this checkpoint belongs to a different experiment (seed, space, data or search changed); "
            "use a new run directory or delete checkpoints/ to start over"
        )
    return state
