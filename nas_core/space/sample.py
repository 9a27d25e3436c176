"""Discrete moves in a space: a uniform random genotype, and regularised evolution's mutation (one op or one
input edge changes)."""
from __future__ import annotations

import random

from nas_core.space.cell import CellGraph, SpaceError
from nas_core.space.genotypes import CellGenotype, Genotype


def _sources(graph: CellGraph, j: int) -> list[int]:
    return [graph.edges[e][0] for e in graph.incoming(j)]


def sample_genotype(space, rng: random.Random, k: int = 2) -> Genotype:
    """Per node, min(k, in-degree) distinct inputs uniformly, and on each a uniform op other than `none`."""
    cells = {}
    for t in sorted(space.cells):
        cfg = space.cells[t]
        graph = CellGraph.from_config(cfg)
        ops = [o for o in cfg.ops if o != "none"]
        nodes = []
        for j in graph.intermediate:
            srcs = rng.sample(_sources(graph, j), min(k, len(graph.incoming(j))))
            nodes.append(tuple((rng.choice(ops), s) for s in srcs))
        cells[t] = CellGenotype(tuple(nodes), graph.concat)
    return Genotype(cells)


def mutate_genotype(genotype: Genotype, space, rng: random.Random) -> Genotype:
    """A copy with one op or one input edge changed (uniformly among the changes the space allows)."""
    moves = []
    for t in sorted(genotype.cells):
        if t not in space.cells:
            raise SpaceError(f"genotype cell {t!r} is not in the space (cell types: {', '.join(space.cells)})")
        cfg = space.cells[t]
        graph = CellGraph.from_config(cfg)
        ops = [o for o in cfg.ops if o != "none"]
        for m, node in enumerate(genotype.cells[t].nodes):
            used = {s for _, s in node}
            for p, (op, src) in enumerate(node):
                moves += [(t, m, p, o, src) for o in ops if o != op]
                moves += [(t, m, p, op, s) for s in _sources(graph, m + 2) if s not in used]
    if not moves:
        raise SpaceError("this space holds a single genotype: no op or input can change; add ops or edges")
    t, m, p, op, src = rng.choice(moves)
    cell = genotype.cells[t]
    node = list(cell.nodes[m])
    node[p] = (op, src)
    nodes = cell.nodes[:m] + (tuple(node),) + cell.nodes[m + 1:]
    return Genotype({**genotype.cells, t: CellGenotype(nodes, cell.concat)})
