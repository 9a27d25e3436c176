"""Spaces the strategies search: a plain product of categorical choices (tests, benchmarks) and the adapter
to the U-Net cell space of `nas_core.space`."""
from __future__ import annotations

import random
from typing import Any

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
    """The cell space of `nas_core.space` (U-Net or DARTS macro), seen through the `SearchSpace` protocol.

    Decisions, per cell type (sorted) and intermediate node: for each of its min(2, in-degree) inputs, which
    source (among the sources earlier inputs left free, so inputs stay distinct) and which op (never `none`),
    the same choices `sample_genotype` makes uniformly.
    """

    def __init__(self, space_cfg: Any, inputs_per_node: int = 2):
        from nas_core.space.cell import CellGraph

        self.cfg = space_cfg
        self.k = inputs_per_node
        self._layout = []  # (cell type, concat, [(sources, ops) per node])
        for t in sorted(space_cfg.cells):
            cell = space_cfg.cells[t]
            graph = CellGraph.from_config(cell)
            ops = [o for o in cell.ops if o != "none"]
            nodes = [([graph.edges[e][0] for e in graph.incoming(j)], ops) for j in graph.intermediate]
            self._layout.append((t, graph.concat, nodes))

    def sample(self, rng: random.Random) -> Genotype:
        from nas_core.space.sample import sample_genotype

        return sample_genotype(self.cfg, rng, self.k).to_dict()

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype:
        from nas_core.space.genotypes import Genotype as SpaceGenotype
        from nas_core.space.sample import mutate_genotype

        return mutate_genotype(SpaceGenotype.from_dict(genotype), self.cfg, rng).to_dict()

    def decisions(self) -> list[int]:
        sizes = []
        for _, _, nodes in self._layout:
            for sources, ops in nodes:
                for p in range(min(self.k, len(sources))):
                    sizes += [len(sources) - p, len(ops)]
        return sizes

    def encode(self, genotype: Genotype) -> list[int]:
        choices = []
        for t, _, nodes in self._layout:
            cell = genotype["cells"][t]["nodes"]
            for m, (sources, ops) in enumerate(nodes):
                free = list(sources)
                for op, src in cell[m][: min(self.k, len(sources))]:
                    choices += [free.index(src), ops.index(op)]
                    free.remove(src)
        return choices

    def decode(self, choices: list[int]) -> Genotype:
        it = iter(choices)
        cells = {}
        for t, concat, nodes in self._layout:
            out = []
            for sources, ops in nodes:
                free, node = list(sources), []
                for _ in range(min(self.k, len(sources))):
                    src = free.pop(next(it))
                    node.append([ops[next(it)], src])
                out.append(node)
            cells[t] = {"nodes": out, "concat": list(concat)}
        return {"cells": cells}
