"""Random search: uniform samples of the space, the yardstick every other search is measured against."""
from __future__ import annotations

from nas_core.discrete._base import Genotype, Strategy


class RandomSearch(Strategy):
    name = "random"

    def _ask(self) -> Genotype:
        return self.space.sample(self.rng)
