"""Regularised (aging) evolution (Real et al., 2019): tournament selection, one mutation, the oldest dies."""
from __future__ import annotations

from collections import deque

from nas_core.discrete._base import Genotype, SearchSpace, Strategy


class RegularizedEvolution(Strategy):
    """Population `population` (default 50), tournament `tournament` (default 10).

    The first `population` asks are random samples. After that a child is a mutation of the best of
    `tournament` members drawn from the population; each result joins the population and the oldest
    member leaves, whatever its score (aging is what regularises the search).
    """

    name = "evolution"

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 50, tournament: int = 10):
        super().__init__(space, seed)
        if population < 2:
            raise ValueError(f"population: at least 2 (got {population})")
        if not 2 <= tournament <= population:
            raise ValueError(f"tournament: between 2 and the population {population} (got {tournament})")
        self.population_size = population
        self.tournament = tournament
        self.population: deque[tuple[Genotype, float]] = deque()

    def _ask(self) -> Genotype:
        # With asynchronous workers results lag behind asks: count asks, not tells, for the random phase,
        # and fall back to a random sample while no result has come back yet.
        if self.n_asked < self.population_size or not self.population:
            return self.space.sample(self.rng)
        k = min(self.tournament, len(self.population))
        contenders = self.rng.sample(list(self.population), k)
        parent = max(contenders, key=lambda member: member[1])[0]
        return self.space.mutate(parent, self.rng)

    def _tell(self, genotype: Genotype, value: float | None) -> None:
        if value is None:
            return  # a failed candidate is no parent
        self.population.append((genotype, value))
        while len(self.population) > self.population_size:
            self.population.popleft()
