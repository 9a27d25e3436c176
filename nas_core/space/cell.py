"""A cell as a DAG: input nodes 0 and 1 (c_{k-2}, c_{k-1}), intermediate nodes, an output concat; its validation.

Pure graph logic (networkx, no torch), so the experiment schema can reject a bad topology before anything is built.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

if TYPE_CHECKING:
    from nas_core.space.config import CellSpaceConfig

INPUTS = (0, 1)
# Resampling of an edge by the role of its cell and its source node: 2 halves the resolution, -2 doubles it.
DOWN, UP = 2, -2


class SpaceError(ValueError):
    """A search space or genotype that cannot be built; the message names the cell, node or edge and the fix."""


def default_edges(nodes: int) -> list[tuple[int, int]]:
    """DARTS topology: every intermediate node takes an edge from every earlier node (14 edges for 4 nodes)."""
    return [(i, j) for j in range(2, nodes + 2) for i in range(j)]


def _node_word(n: int) -> str:
    return f"input node {n}" if n in INPUTS else f"node {n}"


def check_cell_structure(cfg: "CellSpaceConfig", where: str = "cell") -> None:
    """Raise ValueError naming the node or edge for: bad indices, cycles, unreachable nodes, empty op set."""
    if not cfg.ops:
        raise ValueError(f"{where}.ops is empty; give at least one op besides 'none', e.g. [skip_connect, sep_conv_3x3]")
    if all(op == "none" for op in cfg.ops):
        raise ValueError(f"{where}.ops has only 'none'; a genotype needs a real op, e.g. add sep_conv_3x3")
    dupes = sorted({op for op in cfg.ops if cfg.ops.count(op) > 1})
    if dupes:
        raise ValueError(f"{where}.ops lists {dupes[0]!r} twice; list each op once")
    last = cfg.nodes + 1
    edges = cfg.edges if cfg.edges is not None else default_edges(cfg.nodes)
    if not edges:
        raise ValueError(f"{where}.edges is empty; give edges (from, to) or leave it out for the DARTS topology")
    seen = set()
    for k, (i, j) in enumerate(edges):
        for n in (i, j):
            if not 0 <= n <= last:
                raise ValueError(
                    f"{where}.edges[{k}] ({i}, {j}) names node {n}, but the cell has nodes 0-{last} "
                    f"(0, 1 inputs, 2-{last} intermediate); fix the edge or raise {where}.nodes"
                )
        if j in INPUTS:
            raise ValueError(f"{where}.edges[{k}] ({i}, {j}) ends at input node {j}; inputs take no edges, end it at a node >= 2")
        if i == j:
            raise ValueError(f"{where}.edges[{k}] ({i}, {j}) is a self-loop on node {i}; remove it")
        if (i, j) in seen:
            raise ValueError(f"{where}.edges[{k}] ({i}, {j}) appears twice; list each edge once")
        seen.add((i, j))
    g = nx.DiGraph()
    g.add_nodes_from(range(last + 1))
    g.add_edges_from(edges)
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        path = " -> ".join(str(a) for a, _ in cycle) + f" -> {cycle[0][0]}"
        raise ValueError(f"{where}.edges: cycle {path}; a cell is a DAG, remove one of these edges")
    concat = cfg.concat if cfg.concat is not None else list(range(2, last + 1))
    if not concat:
        raise ValueError(f"{where}.concat is empty; list the nodes that form the cell output, e.g. [2, 3]")
    for n in concat:
        if not 2 <= n <= last:
            raise ValueError(f"{where}.concat names node {n}; the output concatenates intermediate nodes 2-{last}")
    reach_in = set(INPUTS)
    for n in INPUTS:
        reach_in |= nx.descendants(g, n)
    reach_out = set(concat)
    for n in concat:
        reach_out |= nx.ancestors(g, n)
    for n in range(2, last + 1):
        if n not in reach_in:
            raise ValueError(
                f"{where}: node {n} is unreachable from the inputs (0, 1); add an edge into it, e.g. (0, {n})"
            )
        if n not in reach_out:
            raise ValueError(
                f"{where}: node {n} does not reach the output; add it to {where}.concat or add an edge from it to a later node"
            )


@dataclass(frozen=True)
class CellGraph:
    """The DAG of one cell type: nodes, ordered edges (the rows of alpha) and the output concat."""

    nodes: int
    edges: tuple[tuple[int, int], ...]
    concat: tuple[int, ...]

    @classmethod
    def from_config(cls, cfg: "CellSpaceConfig") -> "CellGraph":
        edges = cfg.edges if cfg.edges is not None else default_edges(cfg.nodes)
        concat = cfg.concat if cfg.concat is not None else range(2, cfg.nodes + 2)
        return cls(cfg.nodes, tuple((int(i), int(j)) for i, j in edges), tuple(int(n) for n in concat))

    @property
    def intermediate(self) -> range:
        return range(2, self.nodes + 2)

    def to_networkx(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(range(self.nodes + 2))
        for k, (i, j) in enumerate(self.edges):
            g.add_edge(i, j, index=k)
        return g

    def topological_order(self) -> list[int]:
        # Lexicographic so that the order (and hence module order) is stable across runs.
        return list(nx.lexicographical_topological_sort(self.to_networkx()))

    def incoming(self, node: int) -> list[int]:
        """Edge indices into `node`, in alpha-row order."""
        return [k for k, (_, j) in enumerate(self.edges) if j == node]

    def outgoing(self, node: int) -> list[int]:
        return [k for k, (i, _) in enumerate(self.edges) if i == node]

    def edge_index(self, i: int, j: int) -> int:
        try:
            return self.edges.index((i, j))
        except ValueError:
            raise SpaceError(f"edge ({i}, {j}) is not in the cell; its edges are {list(self.edges)}") from None


@dataclass(frozen=True)
class CellSlot:
    """One cell of the plan: type, role (normal|down|up), node channels C, input channels, how input 0 is
    brought to the cell's scale (1 keep, 2 FactorizedReduce, -2 upsample) and the state indices feeding it."""

    index: int
    cell_type: str
    role: str
    C: int
    C_pp: int
    C_p: int
    resample0: int
    inputs: tuple[int, int]


def edge_stride(role: str, source: int) -> int:
    """Resampling on an edge: down cells halve on edges leaving the inputs (DARTS reduction); up cells double
    on edges leaving input 1 (the coarser decoder state) while input 0 (the encoder skip) is already at scale."""
    if role == "down" and source in INPUTS:
        return DOWN
    if role == "up" and source == 1:
        return UP
    return 1
