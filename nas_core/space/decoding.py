"""From architecture weights to a genotype by DARTS's rule: per node keep the k=2 incoming edges whose strongest
non-`none` op weighs most, and on each the argmax op excluding `none`; PC-DARTS's edge weights multiply in."""
from __future__ import annotations

from typing import Mapping, Sequence

from nas_core.space.cell import CellGraph
from nas_core.space.genotypes import CellGenotype, Genotype


def _rows(w) -> list[list[float]]:
    if hasattr(w, "detach"):
        w = w.detach().cpu().tolist()
    elif hasattr(w, "tolist"):
        w = w.tolist()
    return [list(map(float, r)) for r in w]


def decode_cell(weights, graph: CellGraph, ops: Sequence[str], betas=None, k: int = 2) -> CellGenotype:
    W = _rows(weights)
    if len(W) != len(graph.edges) or any(len(r) != len(ops) for r in W):
        raise ValueError(f"weights are {len(W)}x{len(W[0]) if W else 0}; this cell needs {len(graph.edges)} edges x {len(ops)} ops")
    if betas is not None:
        b = [float(v) for v in (betas.detach().cpu().tolist() if hasattr(betas, "detach") else betas)]
        W = [[v * b[e] for v in row] for e, row in enumerate(W)]
    real = [o for o, name in enumerate(ops) if name != "none"]
    nodes = []
    for j in graph.intermediate:
        inc = graph.incoming(j)
        # Stable sort: ties keep alpha-row order, as in the reference implementation.
        best = sorted(inc, key=lambda e: -max(W[e][o] for o in real))[:k]
        nodes.append(tuple((ops[max(real, key=lambda o: W[e][o])], graph.edges[e][0]) for e in best))
    return CellGenotype(tuple(nodes), graph.concat)


def decode(weights: Mapping[str, object], space, betas: Mapping[str, object] | None = None, k: int = 2) -> Genotype:
    """weights: cell type -> (edges x ops) weights as used (softmaxed or on the simplex); betas: cell type ->
    normalised edge weights (PC-DARTS), or None. `space` is a SpaceConfig."""
    cells = {}
    for t, cfg in space.cells.items():
        graph = CellGraph.from_config(cfg)
        cells[t] = decode_cell(weights[t], graph, cfg.ops, None if not betas else betas.get(t), k)
    return Genotype(cells)
