"""Genotypes, the result of a search: per cell type, per intermediate node, the chosen (op, input) pairs and the
output concat. A JSON form with a stable hash, DARTS's `Genotype(...)` text read safely (never evaluated), and a
networkx graph with drawing attributes for the UI.
"""
from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import networkx as nx


@dataclass(frozen=True)
class CellGenotype:
    """nodes[m] = the (op, input node) pairs summed into node m+2; inputs 0, 1 are c_{k-2}, c_{k-1}."""

    nodes: tuple[tuple[tuple[str, int], ...], ...]
    concat: tuple[int, ...]

    def pairs(self):
        """(op, source, target) for every chosen edge."""
        for m, node in enumerate(self.nodes):
            for op, src in node:
                yield op, src, m + 2


@dataclass(frozen=True)
class Genotype:
    cells: dict[str, CellGenotype]

    def __getitem__(self, cell_type: str) -> CellGenotype:
        return self.cells[cell_type]

    def check_fits(self, space: Any, where: str = "genotype") -> "Genotype":
        """Raise ValueError naming the cell and node unless this genotype can be built in `space` (a SpaceConfig):
        every cell type of the macro present, every op one of that cell type's ops. No torch needed."""
        missing = [t for t in space.cells if t not in self.cells]
        if missing:
            raise ValueError(f"{where}: has cells {', '.join(self.cells)}; the experiment's {space.macro} space needs "
                             f"{', '.join(missing)} too")
        for t, cell in self.cells.items():
            if t not in space.cells:
                raise ValueError(f"{where}: cells.{t} is not a cell type of the experiment's space "
                                 f"({', '.join(space.cells)})")
            allowed = set(space.cells[t].ops) | set(space.user_ops)
            for op, _, node in cell.pairs():
                if op not in allowed:
                    raise ValueError(f"{where}: cells.{t}, node {node}: op {op!r} is not one of the space's {t} ops "
                                     f"({', '.join(space.cells[t].ops)})")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "cells": {
                t: {"nodes": [[[op, src] for op, src in node] for node in c.nodes], "concat": list(c.concat)}
                for t, c in self.cells.items()
            }
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "genotype") -> "Genotype":
        if not isinstance(data, dict) or not isinstance(data.get("cells"), dict) or not data["cells"]:
            raise ValueError(f"{where}: a genotype is {{'cells': {{cell_type: {{'nodes': [...], 'concat': [...]}}}}}}")
        cells = {}
        for t, c in data["cells"].items():
            w = f"{where}: cells.{t}"
            if not isinstance(c, dict) or "nodes" not in c:
                raise ValueError(f"{w} needs 'nodes' (a list per intermediate node of [op, input] pairs)")
            nodes = []
            for m, node in enumerate(c["nodes"]):
                pairs = []
                for p in node:
                    if not (isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str)
                            and isinstance(p[1], int) and not isinstance(p[1], bool)):
                        raise ValueError(f"{w}.nodes[{m}]: {p!r} is not an [op, input node] pair")
                    if not 0 <= p[1] < m + 2 + len(c["nodes"]):
                        raise ValueError(f"{w}.nodes[{m}]: input node {p[1]} does not exist")
                    pairs.append((p[0], int(p[1])))
                if not pairs:
                    raise ValueError(f"{w}.nodes[{m}] is empty; node {m + 2} needs at least one input")
                nodes.append(tuple(pairs))
            concat = c.get("concat", list(range(2, len(nodes) + 2)))
            if not concat or any(not isinstance(n, int) or not 2 <= n < len(nodes) + 2 for n in concat):
                raise ValueError(f"{w}.concat {concat!r} must list intermediate nodes 2-{len(nodes) + 1}")
            cells[t] = CellGenotype(tuple(nodes), tuple(int(n) for n in concat))
        return cls(cells)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def hash(self) -> str:
        """Stable across processes; the pairs of a node are a sum, so their order does not change the hash."""
        canon = {
            t: {"nodes": [sorted([op, src] for op, src in node) for node in c.nodes], "concat": sorted(c.concat)}
            for t, c in self.cells.items()
        }
        return hashlib.sha256(json.dumps(canon, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


# ---- DARTS text form ---------------------------------------------------------------------------------------------

_DARTS_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


def _literal(node: ast.AST, where: str) -> Any:
    """Lists/tuples of str and int constants, and range(a, b[, c]); anything else is refused."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, where) for e in node.elts]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and 1 <= len(node.args) <= 3):
        args = [_literal(a, where) for a in node.args]
        if all(isinstance(a, int) for a in args):
            return list(range(*args))
    raise ValueError(f"{where}: only lists of ('op', input) tuples, ints and range(...) are allowed, "
                     f"not {ast.unparse(node)[:60]!r}")


def parse_darts_genotype(text: str, name: str | None = None) -> Genotype:
    """Read `Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=range(2, 6))`, optionally as
    `NAME = Genotype(...)` (pick one of several assignments with `name`). The text is parsed, never evaluated."""
    try:
        tree = ast.parse(text.strip(), mode="exec")
    except SyntaxError as exc:
        raise ValueError(f"not a Genotype(...) expression: {exc.msg} at line {exc.lineno}") from None
    calls: dict[str | None, ast.Call] = {}
    for stmt in tree.body:
        value, target = None, None
        if isinstance(stmt, ast.Expr):
            value = stmt.value
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            value, target = stmt.value, stmt.targets[0].id
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "Genotype":
            calls[target] = value
    if not calls:
        raise ValueError("no Genotype(...) expression found; expected e.g. Genotype(normal=[('sep_conv_3x3', 0), ...], ...)")
    if name is not None:
        if name not in calls:
            raise ValueError(f"no genotype named {name!r}; the text defines {', '.join(str(k) for k in calls)}")
        call = calls[name]
    elif len(calls) == 1:
        call = next(iter(calls.values()))
    else:
        raise ValueError(f"the text defines several genotypes ({', '.join(str(k) for k in calls)}); choose one by name")
    if len(call.args) > len(_DARTS_FIELDS):
        raise ValueError("Genotype(...) takes at most 4 arguments: normal, normal_concat, reduce, reduce_concat")
    fields = {f: _literal(a, f) for f, a in zip(_DARTS_FIELDS, call.args)}
    for kw in call.keywords:
        if kw.arg not in _DARTS_FIELDS:
            raise ValueError(f"Genotype(...) has no field {kw.arg!r}; fields are {', '.join(_DARTS_FIELDS)}")
        fields[kw.arg] = _literal(kw.value, kw.arg)
    missing = [f for f in _DARTS_FIELDS if f not in fields]
    if missing:
        raise ValueError(f"Genotype(...) lacks {missing[0]!r}")
    cells = {}
    for t in ("normal", "reduce"):
        pairs = fields[t]
        if len(pairs) % 2 or not pairs:
            raise ValueError(f"{t}: DARTS cells take two (op, input) pairs per node; got {len(pairs)} pairs")
        for p in pairs:
            if not (isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], int)):
                raise ValueError(f"{t}: {p!r} is not an ('op', input) pair")
        nodes = [[pairs[2 * m], pairs[2 * m + 1]] for m in range(len(pairs) // 2)]
        cells[t] = {"nodes": nodes, "concat": fields[f"{t}_concat"]}
    return Genotype.from_dict({"cells": cells}, where="Genotype(...)")


def format_darts_genotype(g: Genotype) -> str:
    """DARTS's text form; needs cell types normal and reduce (a U-Net genotype's `down` serves as `reduce`)."""
    reduce = "reduce" if "reduce" in g.cells else "down"
    parts = []
    for field, t in (("normal", "normal"), ("reduce", reduce)):
        if t not in g.cells:
            raise ValueError(f"a DARTS Genotype needs a {t!r} cell; this genotype has {', '.join(g.cells)}")
        c = g.cells[t]
        if any(len(node) != 2 for node in c.nodes):
            raise ValueError(f"cell {t!r}: DARTS's form needs exactly two inputs per node")
        pairs = ", ".join(f"({op!r}, {src})" for node in c.nodes for op, src in node)
        parts.append(f"{field}=[{pairs}], {field}_concat={list(c.concat)}")
    return f"Genotype({', '.join(parts)})"


def load_genotype(path) -> Genotype:
    """A genotype file: our JSON form, or text holding DARTS's `Genotype(...)`."""
    from pathlib import Path

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read genotype file ({exc.strerror})") from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        return Genotype.from_dict(data, where=str(path))
    try:
        return parse_darts_genotype(text)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


# ---- drawing ---------------------------------------------------------------------------------------------------

_OP_COLORS = {"pool": "#8fbcbb", "skip": "#a3be8c", "sep": "#5e81ac", "dil": "#b48ead", "conv": "#d08770", "none": "#cccccc"}


def _color(op: str) -> str:
    for key, color in _OP_COLORS.items():
        if key in op:
            return color
    return "#ebcb8b"


def genotype_to_graph(g: Genotype) -> nx.MultiDiGraph:
    """One graph holding every cell: node ids 'TYPE:N' (N in 0, 1 inputs, 2.. intermediate, 'out'), with
    `cell`, `label`, `kind` (input|node|output), `layer` and `pos` (x, y) for drawing; edges carry `op`,
    `label` and `color`. A multigraph, since two ops may join the same pair of nodes."""
    graph = nx.MultiDiGraph()
    for row, (t, c) in enumerate(g.cells.items()):
        y0 = -row * 3.0
        n_nodes = len(c.nodes)
        graph.add_node(f"{t}:0", cell=t, label="c_{k-2}", kind="input", layer=0, pos=(0.0, y0 + 1.0))
        graph.add_node(f"{t}:1", cell=t, label="c_{k-1}", kind="input", layer=0, pos=(0.0, y0 - 1.0))
        for m in range(n_nodes):
            graph.add_node(f"{t}:{m + 2}", cell=t, label=str(m + 2), kind="node", layer=m + 1,
                           pos=(float(m + 1), y0 + (0.5 if m % 2 else -0.5)))
        graph.add_node(f"{t}:out", cell=t, label="c_{k}", kind="output", layer=n_nodes + 1, pos=(float(n_nodes + 1), y0))
        for op, src, dst in c.pairs():
            graph.add_edge(f"{t}:{src}", f"{t}:{dst}", op=op, label=op, color=_color(op))
        for n in c.concat:
            graph.add_edge(f"{t}:{n}", f"{t}:out", op="concat", label="", color="#888888")
    return graph
