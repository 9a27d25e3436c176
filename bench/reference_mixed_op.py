"""The plain reference supernet for bench/supernet_step: DARTS's MixedOp, sum over all ops of w * op(x), one op
after another, one edge after another, with the same weights as a given nas_core supernet."""
from __future__ import annotations

import torch
from torch import nn

from nas_core.space.cell import edge_stride
from nas_core.space.macro import MacroNetwork, preprocess
from nas_core.space.ops import OPS, op_spec


class MixedOp(nn.Module):
    def __init__(self, ops, C, stride, op_params):
        super().__init__()
        self._ops = nn.ModuleList()
        for name in ops:
            op = OPS[name](C, stride, False, **op_params.get(name, {}))
            if op_spec(name).pool:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            self._ops.append(op)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class _RefCell(nn.Module):
    def __init__(self, slot, graph, ops, op_params):
        super().__init__()
        self.graph = graph
        self.preprocess0 = preprocess(slot.C_pp, slot.C, slot.resample0, affine=False)
        self.preprocess1 = preprocess(slot.C_p, slot.C, 1, affine=False)
        self._ops = nn.ModuleList(MixedOp(ops, slot.C, edge_stride(slot.role, i), op_params) for i, _ in graph.edges)
        self.order = [n for n in graph.topological_order() if n >= 2]

    def forward(self, s0, s1, weights):
        states = {0: self.preprocess0(s0), 1: self.preprocess1(s1)}
        for j in self.order:
            states[j] = sum(self._ops[e](states[self.graph.edges[e][0]], weights[e]) for e in self.graph.incoming(j))
        return torch.cat([states[n] for n in self.graph.concat], dim=1)


class ReferenceSupernet(MacroNetwork):
    """Built from a supernet (pc_k=1, no beta): same plan, same weights, alphas shared with it."""

    def __init__(self, supernet):
        space = supernet.space
        mult = {t: len(g.concat) for t, g in supernet.graphs.items()}
        super().__init__(space, mult, lambda slot: _RefCell(slot, supernet.graphs[slot.cell_type],
                                                            supernet.op_names(slot.cell_type), space.op_params))
        self._supernet = [supernet]  # a list: not a submodule, its parameters stay its own
        with torch.no_grad():
            own = self.state_dict()
            for key, value in supernet.state_dict().items():
                if not key.startswith(("cells.", "_")):
                    own[key].copy_(value)
            for cell, scell in zip(self.cells, supernet.cells):
                cell.preprocess0.load_state_dict(scell.preprocess0.state_dict())
                cell.preprocess1.load_state_dict(scell.preprocess1.state_dict())
                for e, mixed in enumerate(cell._ops):
                    group, pos = scell.edge_group(e)
                    for name, op in zip(group.ops, mixed._ops):
                        sd = group.edge_state_dict(name, pos)
                        target = op.state_dict()
                        for k, v in sd.items():
                            target[k].copy_(v)

    def _context(self):
        return self._supernet[0].arch_weights()

    def _run_cell(self, cell, slot, s0, s1, ctx):
        return cell(s0, s1, ctx[slot.cell_type])
