"""Discrete architecture search: random search, regularised evolution and REINFORCE behind one ask/tell
interface, dispatched to workers by an MPI orchestrator or a local pool, one child process per trial.

Nothing here imports torch at import time: only a trial's child process (and the REINFORCE policy) does.
"""
from __future__ import annotations

from typing import Any

from nas_core.discrete._base import Genotype, SearchSpace, Strategy
from nas_core.discrete._evolution import RegularizedEvolution
from nas_core.discrete._random import RandomSearch
from nas_core.discrete._reinforce import Reinforce
from nas_core.discrete._space import CategoricalSpace, CellSearchSpace
from nas_core.discrete.job import SearchJob

STRATEGIES: dict[str, type[Strategy]] = {
    RandomSearch.name: RandomSearch,
    RegularizedEvolution.name: RegularizedEvolution,
    Reinforce.name: Reinforce,
}


def create_strategy(name: str, space: SearchSpace, seed: int = 0, **kwargs: Any) -> Strategy:
    """The strategy registered as `name` (random, evolution, reinforce) over `space`."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"search.method: unknown discrete strategy {name!r}; use one of {', '.join(STRATEGIES)}") from None
    return cls(space, seed=seed, **kwargs)


def run_search(job: SearchJob, workers: int = 1) -> dict[str, Any]:
    """Run `job` without MPI: in this process (workers=0) or on `workers` local trial processes."""
    from nas_core.discrete._pool import run_local

    return run_local(job, workers)


__all__ = [
    "Genotype", "SearchSpace", "Strategy", "RandomSearch", "RegularizedEvolution", "Reinforce",
    "CategoricalSpace", "CellSearchSpace", "SearchJob", "STRATEGIES", "create_strategy", "run_search",
]
