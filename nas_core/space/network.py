"""The discrete network of a genotype (same macro as the supernet), weight inheritance from a supernet, and
parameter counting as the DARTS code counts."""
from __future__ import annotations

import networkx as nx
import torch
from torch import nn

from nas_core.space.cell import SpaceError, edge_stride
from nas_core.space.config import SpaceConfig
from nas_core.space.genotypes import CellGenotype, Genotype
from nas_core.space.macro import CellSlot, MacroNetwork, preprocess
from nas_core.space.ops import OPS, op_spec, register_user_ops


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x.div(keep).mul(mask)


class Cell(nn.Module):
    """A cell of a genotype: each intermediate node sums its chosen ops, walked in topological order."""

    def __init__(self, cell: CellGenotype, slot: CellSlot, op_params: dict, affine: bool = True):
        super().__init__()
        self.preprocess0 = preprocess(slot.C_pp, slot.C, slot.resample0, affine)
        self.preprocess1 = preprocess(slot.C_p, slot.C, 1, affine)
        g = nx.DiGraph()
        g.add_nodes_from(range(len(cell.nodes) + 2))
        self.pairs = list(cell.pairs())  # (op, source, target) per edge, in genotype order
        g.add_edges_from((s, t) for _, s, t in self.pairs)
        if not nx.is_directed_acyclic_graph(g):
            raise SpaceError(f"genotype cell {slot.cell_type!r}: its inputs form a cycle ({nx.find_cycle(g)}); "
                             "a node may only take inputs that do not depend on it")
        self.order = [n for n in nx.lexicographical_topological_sort(g) if n >= 2]
        self.concat = cell.concat
        self._ops = nn.ModuleList()
        for op, s, t in self.pairs:
            try:
                self._ops.append(OPS[op](slot.C, edge_stride(slot.role, s), affine, **op_params.get(op, {})))
            except KeyError:
                op_spec(op)  # raises the "unknown op" message
        self._identity = [isinstance(m, nn.Identity) for m in self._ops]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = {0: self.preprocess0(s0), 1: self.preprocess1(s1)}
        for n in self.order:
            total = None
            for k, (_, s, t) in enumerate(self.pairs):
                if t != n:
                    continue
                h = self._ops[k](states[s])
                if self.training and drop_prob > 0 and not self._identity[k]:
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states[n] = total
        return torch.cat([states[n] for n in self.concat], dim=1)


class Network(MacroNetwork):
    """The discrete network. `drop_path_prob` (DARTS's retraining regulariser) is 0 unless the trainer sets it."""

    def __init__(self, genotype: Genotype, space: SpaceConfig, auxiliary: bool | None = None, load_init: bool = True):
        register_user_ops(space.user_ops)
        needed = {slot_type for slot_type in space.cells}
        missing = [t for t in needed if t not in genotype.cells]
        if missing:
            raise SpaceError(f"genotype has cells {', '.join(genotype.cells)}; macro {space.macro!r} needs {missing[0]!r} too")
        for t in needed:
            for op, s, n in genotype.cells[t].pairs():
                try:
                    op_spec(op)
                except ValueError as exc:
                    raise SpaceError(f"genotype cell {t!r}, node {n}: {exc}") from None
        mult = {t: len(genotype.cells[t].concat) for t in needed}
        super().__init__(space, mult, lambda slot: Cell(genotype.cells[slot.cell_type], slot, space.op_params),
                         auxiliary=space.auxiliary if auxiliary is None else auxiliary, load_init=load_init)
        self.genotype = genotype
        self.drop_path_prob = 0.0

    def _run_cell(self, cell, slot, s0, s1, ctx):
        return cell(s0, s1, self.drop_path_prob)


def build_network(genotype: Genotype, space: SpaceConfig, auxiliary: bool | None = None, *,
                  load_init: bool = True) -> Network:
    """The discrete network of `genotype` in the macro of `space` (auxiliary head: space.auxiliary by default).
    A partial search's backbone starts from space.init_from unless load_init=False (the caller loads a
    retrained network's weights next, so the checkpoint need not exist any more)."""
    return Network(genotype, space, auxiliary, load_init)


def _load_into(module: nn.Module, sd: dict[str, torch.Tensor], where: str) -> None:
    target = module.state_dict()
    for key, value in sd.items():
        if key not in target or target[key].shape != value.shape:
            raise SpaceError(f"{where}: supernet weight {key!r} {tuple(value.shape)} has no match in the network's op")
        target[key].copy_(value)


def inherit_weights(network: Network, supernet) -> Network:
    """Copy the supernet's weights of the chosen ops (and stem, preprocessing, head) into `network`, in place.
    The network's BN affine parameters keep their values (the supernet's BN has none)."""
    if len(network.slots) != len(supernet.slots) or any(
        (a.cell_type, a.C, a.C_pp, a.C_p) != (b.cell_type, b.C, b.C_pp, b.C_p) for a, b in zip(network.slots, supernet.slots)
    ):
        raise SpaceError("network and supernet have different macro-architectures (cells, channels or concat); "
                         "build both from the same space")
    with torch.no_grad():
        skip = ("cells.", "auxiliary_head.")
        outer = {k: v for k, v in supernet.state_dict().items() if not k.startswith(skip) and not k.startswith("_")}
        _load_into(network, outer, "stem/head")
        for i, (cell, scell) in enumerate(zip(network.cells, supernet.cells)):
            _load_into(cell.preprocess0, scell.preprocess0.state_dict(), f"cell {i} preprocess0")
            _load_into(cell.preprocess1, scell.preprocess1.state_dict(), f"cell {i} preprocess1")
            for k, (op, s, t) in enumerate(cell.pairs):
                where = f"cell {i} ({network.slots[i].cell_type}), edge ({s}, {t}), op {op!r}"
                try:
                    e = scell.graph.edge_index(s, t)
                except SpaceError:
                    raise SpaceError(f"{where}: the supernet has no edge ({s}, {t})") from None
                group, pos = scell.edge_group(e)
                if op not in group.kinds:
                    raise SpaceError(f"{where}: the supernet's cell has no such op (ops: {', '.join(group.ops)})")
                if group.pc_k > 1:
                    raise SpaceError("inherit_weights needs a supernet without partial channels (pc_k=1): with pc_k > 1 "
                                     "the supernet's ops have fewer channels than the network's")
                _load_into(cell._ops[k], group.edge_state_dict(op, pos), where)
    return network


def count_parameters(module: nn.Module, include_auxiliary: bool = False) -> int:
    """Parameters as DARTS counts them: those named `auxiliary...` are left out unless asked for."""
    return sum(p.numel() for name, p in module.named_parameters() if include_auxiliary or "auxiliary" not in name)


def count_flops(module: nn.Module, inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass on `inputs` (torch's FlopCounterMode: 2 per multiply-add of convolutions and matrix
    products), with BatchNorm statistics and the module's mode left as they were."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(inputs)
    finally:
        module.train(was_training)
    return int(counter.get_total_flops())
