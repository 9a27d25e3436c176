"""Spaces the strategies search: a plain product of categorical choices (tests, benchmarks) and the adapter
to the U-Net cell space of `nas_core.space`."""
from __future__ import annotations

import random

from nas_core.discrete._base import Genotype


class CategoricalSpace:
    """Independent categorical decisions; the genotype is `{"choices": [i0, i1, ...]}`."""

    def __init__(self, sizes: list[int]):
        if not sizes or any(int(s) < 2 for s in sizes):
            raise ValueError(f"space.categorical: every decision needs at least 2 choices, got {sizes!r}")
        self.sizes = [int(s) for s in sizes]

    def sample(self, rng: random.Random) -> Genotype:
        return {"choices": [rng.randrange(s) for s in self.sizes]}

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype:
        # One decision changes to a different value, as a mutation changes one op or one input edge.
        choices = list(self.encode(genotype))
        i = rng.randrange(len(choices))
        choices[i] = (choices[i] + rng.randrange(1, self.sizes[i])) % self.sizes[i]
        return {"choices": choices}

    def decisions(self) -> list[int]:
        return list(self.sizes)

    def encode(self, genotype: Genotype) -> list[int]:
        choices = [int(c) for c in genotype["choices"]]
        if len(choices) != len(self.sizes) or any(not 0 <= c < s for c, s in zip(choices, self.sizes)):
            raise ValueError(f"genotype {genotype!r} does not fit the categorical space {self.sizes}")
        return choices

    def decode(self, choices: list[int]) -> Genotype:
        return {"choices": self.encode({"choices": list(choices)})}


class CellSearchSpace:
    """The U-Net cell space of `nas_core.space`, seen through the `SearchSpace` protocol."""

    def __init__(self, space_cfg):
        try:
            from nas_core import space as _space_mod
        except ImportError as exc:  # pragma: no cover - the package always exists; its functions may not yet
            raise RuntimeError(f"nas_core.space is not available: {exc}") from None
        if not hasattr(_space_mod, "sample_genotype"):
            raise RuntimeError("nas_core.space has no sample_genotype yet; use a categorical space (job.categorical)")
        self.cfg = space_cfg
        self._mod = _space_mod

    def sample(self, rng: random.Random) -> Genotype:
        return self._mod.sample_genotype(self.cfg, rng).to_dict()

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype:
        g = self._mod.Genotype.from_dict(genotype)
        return self._mod.mutate_genotype(g, self.cfg, rng).to_dict()

    def decisions(self) -> list[int]:
        raise NotImplementedError

    def encode(self, genotype: Genotype) -> list[int]:
        raise NotImplementedError

    def decode(self, choices: list[int]) -> Genotype:
        raise NotImplementedError
