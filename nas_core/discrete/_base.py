"""The ask/tell interface every discrete strategy implements, and the small space protocol they search over.

Strategies see genotypes only as JSON-able dicts and the space only through `SearchSpace`, so the same
strategy runs on a toy categorical space in tests and on the U-Net cell space (`nas_core.space`) in a search.
"""
from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

Genotype = dict[str, Any]


@runtime_checkable
class SearchSpace(Protocol):
    """What a strategy may ask of a space.

    `decisions()` lists the number of choices of each categorical decision of the cells, in a fixed order;
    `encode`/`decode` map a genotype to those choice indices and back (REINFORCE's policy emits indices).
    """

    def sample(self, rng: random.Random) -> Genotype: ...

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype: ...

    def decisions(self) -> list[int]: ...

    def encode(self, genotype: Genotype) -> list[int]: ...

    def decode(self, choices: list[int]) -> Genotype: ...


class Strategy(ABC):
    """A discrete search strategy: `ask()` proposes a genotype, `tell()` reports its score.

    Calls may interleave freely (asynchronous workers): several asks before the first tell, tells in any
    order. `value` is the validation IoU (higher is better) or None when the trial failed for good.
    """

    name: str = ""

    def __init__(self, space: SearchSpace, seed: int = 0):
        self.space = space
        self.seed = seed
        self.rng = random.Random(seed)
        self.n_asked = 0
        self.n_told = 0
        self.best: tuple[float, Genotype] | None = None

    def ask(self) -> Genotype:
        genotype = self._ask()
        self.n_asked += 1
        return genotype

    def tell(self, genotype: Genotype, value: float | None) -> None:
        self.n_told += 1
        if value is not None and (self.best is None or value > self.best[0]):
            self.best = (value, genotype)
        self._tell(genotype, value)

    @abstractmethod
    def _ask(self) -> Genotype: ...

    def _tell(self, genotype: Genotype, value: float | None) -> None:
        """Learn from a result; strategies that do not learn (random search) keep the default."""
