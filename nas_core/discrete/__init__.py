"""Discrete architecture search: random search, regularised evolution and REINFORCE behind one ask/tell
interface, dispatched to workers by an MPI orchestrator or a local pool, one child process per trial.

Nothing here imports torch at import time: only a trial's child process (and the REINFORCE policy) does.
Public names load on first use, so a trial's child process starts with the standard library alone.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Genotype": "_base", "SearchSpace": "_base", "Strategy": "_base",
    "RandomSearch": "_random", "RegularizedEvolution": "_evolution", "Reinforce": "_reinforce",
    "CategoricalSpace": "_space", "CellSearchSpace": "_space", "SearchJob": "job",
}

__all__ = sorted([*_EXPORTS, "STRATEGIES", "create_strategy", "run_search"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"nas_core.discrete.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    if name == "STRATEGIES":
        from nas_core.discrete._evolution import RegularizedEvolution
        from nas_core.discrete._random import RandomSearch
        from nas_core.discrete._reinforce import Reinforce

        value = {cls.name: cls for cls in (RandomSearch, RegularizedEvolution, Reinforce)}
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nas_core.discrete' has no attribute {name!r}")


def create_strategy(name: str, space: Any, seed: int = 0, **kwargs: Any) -> Any:
    """The strategy registered as `name` (random, evolution, reinforce) over `space`."""
    strategies = __getattr__("STRATEGIES")
    try:
        cls = strategies[name]
    except KeyError:
        raise ValueError(f"search.method: unknown discrete strategy {name!r}; use one of {', '.join(strategies)}") from None
    return cls(space, seed=seed, **kwargs)


def run_search(job: Any, workers: int = 1) -> dict[str, Any]:
    """Run `job` (a SearchJob) without MPI: in this process (workers=0) or on `workers` local trial processes."""
    from nas_core.discrete._pool import run_local

    return run_local(job, workers)
