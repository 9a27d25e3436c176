"""The supernet: every edge of every cell a MixedOp weighted by its row of alpha (DARTS), optionally with
PC-DARTS's partial channels and edge weights (beta), or GAEA's simplex alpha used directly."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas_core.space.cell import CellGraph, SpaceError, edge_stride
from nas_core.space.config import SpaceConfig
from nas_core.space.decoding import decode
from nas_core.space.genotypes import Genotype
from nas_core.space.macro import CellSlot, MacroNetwork, preprocess
from nas_core.space.mixed_op import EdgeGroup
from nas_core.space.validate import cell_role, validate_space

ALPHA_MODES = ("softmax", "simplex")


def source_order(graph: CellGraph) -> list[int]:
    """Edge indices sorted by source node, so that the edges leaving one node are contiguous rows."""
    return sorted(range(len(graph.edges)), key=lambda e: (graph.edges[e][0], e))


class SearchCell(nn.Module):
    """A cell of the supernet, walked in topological order; the edges leaving a node are one EdgeGroup."""

    def __init__(self, slot: CellSlot, graph: CellGraph, ops: list[str], op_params: dict, pc_k: int,
                 aux_skip: bool = False):
        super().__init__()
        C = slot.C
        self.preprocess0 = preprocess(slot.C_pp, C, slot.resample0, affine=False)
        self.preprocess1 = preprocess(slot.C_p, C, 1, affine=False)
        self.graph = graph
        self.order = graph.topological_order()
        # Edges sorted by source: the rows of (permuted) alpha for one group are contiguous.
        self.by_source = source_order(graph)
        self.spans: dict[int, tuple[int, int]] = {}
        self.groups = nn.ModuleDict()
        for n in self.order:
            out = graph.outgoing(n)
            if not out:
                continue
            start = self.by_source.index(out[0])
            self.spans[n] = (start, start + len(out))
            self.groups[str(n)] = EdgeGroup(ops, C, edge_stride(slot.role, n), len(out), op_params, pc_k,
                                            aux_skip=aux_skip)
        self.targets = {n: [graph.edges[e][1] for e in graph.outgoing(n)] for n in self.spans}

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, w: torch.Tensor, beta: torch.Tensor | None) -> torch.Tensor:
        """w: (edges x ops) weights and beta: (edges,) normalised edge weights, both already in by_source order."""
        states = {0: self.preprocess0(s0), 1: self.preprocess1(s1)}
        pending: dict[int, torch.Tensor] = {}
        for n in self.order:
            if n >= 2:
                states[n] = pending.pop(n)
            if n in self.spans:
                a, b = self.spans[n]
                y = self.groups[str(n)](states[n], w[a:b], None if beta is None else beta[a:b])
                for k, j in enumerate(self.targets[n]):
                    pending[j] = y[:, k] if j not in pending else pending[j] + y[:, k]
        return torch.cat([states[n] for n in self.graph.concat], dim=1)

    def edge_group(self, edge: int) -> tuple[EdgeGroup, int]:
        """The group computing `edge` and the edge's position in it."""
        i = self.graph.edges[edge][0]
        return self.groups[str(i)], self.graph.outgoing(i).index(edge)


class Supernet(MacroNetwork):
    def __init__(self, space: SpaceConfig, *, pc_k: int = 1, edge_norm: bool = False, alpha_mode: str = "softmax",
                 aux_skip: bool = False):
        if alpha_mode not in ALPHA_MODES:
            raise SpaceError(f"alpha_mode {alpha_mode!r}: use 'softmax' (DARTS) or 'simplex' (GAEA)")
        if pc_k < 1:
            raise SpaceError(f"pc_k={pc_k}: use 1 (no partial channels) or K > 1 (1/K of channels through the MixedOp)")
        graphs = validate_space(space)
        mult = {t: len(g.concat) for t, g in graphs.items()}
        ops = {t: list(c.ops) for t, c in space.cells.items()}

        def make_cell(slot: CellSlot) -> nn.Module:
            if slot.C % pc_k:
                raise SpaceError(f"pc_k={pc_k}: cell {slot.index} ({slot.cell_type}) has {slot.C} channels, not divisible "
                                 f"by {pc_k}; choose channels divisible by {pc_k} or a smaller pc_k")
            if (slot.C // pc_k) % 2 and slot.role == "down" and "skip_connect" in ops[slot.cell_type]:
                raise SpaceError(f"pc_k={pc_k}: {slot.C}/{pc_k} channels is odd; skip_connect on a down edge "
                                 "(FactorizedReduce) needs an even count; change channels or pc_k")
            return SearchCell(slot, graphs[slot.cell_type], ops[slot.cell_type], space.op_params, pc_k, aux_skip)

        super().__init__(space, mult, make_cell)
        self.graphs, self._ops = graphs, ops
        self.pc_k, self.edge_norm, self.alpha_mode, self.aux_skip = pc_k, edge_norm, alpha_mode, aux_skip
        self._alphas = nn.ParameterDict()
        self._betas = nn.ParameterDict()
        for t, g in graphs.items():
            shape = (len(g.edges), len(self._ops[t]))
            if alpha_mode == "softmax":
                self._alphas[t] = nn.Parameter(1e-3 * torch.randn(shape))
            else:
                # GAEA starts at the simplex's centre; its exponentiated-gradient updater keeps rows on the simplex.
                self._alphas[t] = nn.Parameter(torch.full(shape, 1.0 / shape[1]))
            if edge_norm:
                self._betas[t] = nn.Parameter(1e-3 * torch.randn(len(g.edges)))
        self._perm = {t: source_order(g) for t, g in graphs.items()}

    # ---- architecture parameters ----
    def alphas(self) -> dict[str, nn.Parameter]:
        return dict(self._alphas.items())

    def betas(self) -> dict[str, nn.Parameter]:
        return dict(self._betas.items())

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self._alphas.values()) + list(self._betas.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        # Frozen backbone blocks of a partial search are not trained: no optimiser or architect sees them.
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch and p.requires_grad]

    def arch_weights(self) -> dict[str, torch.Tensor]:
        """The weights each MixedOp actually uses: softmax(alpha) per row, or alpha itself on the simplex."""
        if self.alpha_mode == "softmax":
            return {t: F.softmax(a, dim=-1) for t, a in self._alphas.items()}
        return {t: a for t, a in self._alphas.items()}

    def set_aux_skip_weight(self, weight: float) -> None:
        """DARTS-: the weight of every edge's auxiliary skip (a schedule, not a parameter: nothing to checkpoint)."""
        if not self.aux_skip:
            raise SpaceError("set_aux_skip_weight: this supernet has no auxiliary skip (build it with aux_skip=True)")
        for m in self.modules():
            if isinstance(m, EdgeGroup):
                m.aux_weight = float(weight)

    def normalized_betas(self) -> dict[str, torch.Tensor]:
        """PC-DARTS: softmax of beta over each node's incoming edges (empty without edge_norm)."""
        out = {}
        for t, b in self._betas.items():
            g = self.graphs[t]
            order = [e for j in g.intermediate for e in g.incoming(j)]
            parts = torch.cat([F.softmax(b[g.incoming(j)], dim=0) for j in g.intermediate])
            inverse = torch.empty(len(order), dtype=torch.long)
            inverse[torch.tensor(order)] = torch.arange(len(order))
            out[t] = parts.index_select(0, inverse.to(b.device))
        return out

    def genotype(self, k: int = 2) -> Genotype:
        with torch.no_grad():
            betas = self.normalized_betas() if self.edge_norm else None
            return decode(self.arch_weights(), self.space, betas, k)

    def edge_names(self, cell_type: str) -> list[str]:
        return [f"{i}->{j}" for i, j in self.graphs[cell_type].edges]

    def op_names(self, cell_type: str) -> list[str]:
        return list(self._ops[cell_type])

    # ---- forward ----
    def _context(self):
        weights = self.arch_weights()
        betas = self.normalized_betas() if self.edge_norm else {}
        ctx = {}
        for t, w in weights.items():
            perm = torch.tensor(self._perm[t], device=w.device)
            ctx[t] = (w.index_select(0, perm), betas[t].index_select(0, perm) if t in betas else None)
        return ctx

    def _run_cell(self, cell, slot, s0, s1, ctx):
        w, beta = ctx[slot.cell_type]
        return cell(s0, s1, w, beta)


def build_supernet(space: SpaceConfig, *, pc_k: int = 1, edge_norm: bool = False, alpha_mode: str = "softmax",
                   aux_skip: bool = False) -> Supernet:
    """The supernet of `space`. pc_k > 1: PC-DARTS partial channels; edge_norm: PC-DARTS beta; alpha_mode:
    'softmax' (DARTS) or 'simplex' (GAEA); aux_skip: DARTS-'s auxiliary skip on every edge (weight 0 until set)."""
    return Supernet(space, pc_k=pc_k, edge_norm=edge_norm, alpha_mode=alpha_mode, aux_skip=aux_skip)
