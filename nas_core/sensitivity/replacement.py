"""Random replacement cells: the network with one named block replaced by a cell of a random genotype of the
block's role (normal, down or up), the cell a partial search of that block would put there.

The cell is built as a partial search builds it (nas_core.space: CellSlot, the discrete Cell, sample_genotype)
and called as the block was: (x) for a normal or down block, (x, skip) for an up block, which a cell takes as
(skip, x), the U-Net of cells' order. A few such cells, trained briefly, say how much a searched cell could add.
"""
from __future__ import annotations

import copy
import random
from types import SimpleNamespace

import torch
from torch import nn

from nas_core.models.blocks import BlockSpec
from nas_core.sensitivity.finetune import SensitivityError
from nas_core.space.cell import CellSlot
from nas_core.space.config import CellSpaceConfig
from nas_core.space.genotypes import CellGenotype
from nas_core.space.network import Cell
from nas_core.space.sample import sample_genotype

ROLES = ("normal", "down", "up")


class CellInPlace(nn.Module):
    """A discrete cell standing where block `name` stood, taking that block's call."""

    def __init__(self, cell: Cell, role: str):
        super().__init__()
        self.cell, self.role = cell, role

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        return self.cell(skip, x) if self.role == "up" else self.cell(x, x)


def cell_space(spec: BlockSpec, nodes: int) -> CellSpaceConfig:
    """The block's cell space: DARTS ops, the most nodes up to `nodes` whose concatenation fills its channels."""
    n = next(k for k in range(min(nodes, spec.out_channels), 0, -1) if spec.out_channels % k == 0)
    return CellSpaceConfig(nodes=n)


def random_cell(spec: BlockSpec, cfg: CellSpaceConfig, rng: random.Random) -> tuple[CellInPlace, CellGenotype]:
    if spec.role not in ROLES:
        raise SensitivityError(f"block {spec.name}: role {spec.role!r} has no cell type (cells are {', '.join(ROLES)})")
    genotype = sample_genotype(SimpleNamespace(cells={spec.role: cfg}), rng).cells[spec.role]
    c_pp = spec.skip_channels if spec.role == "up" else spec.in_channels
    slot = CellSlot(0, spec.role, spec.role, spec.out_channels // len(genotype.concat), c_pp, spec.in_channels, 1,
                    (0, 0))
    return CellInPlace(Cell(genotype, slot, {}), spec.role), genotype


def replaced(model: nn.Module, spec: BlockSpec, cfg: CellSpaceConfig, rng: random.Random, seed: int
             ) -> tuple[nn.Module, CellGenotype]:
    """A copy of `model` with block `spec.name` replaced by a freshly initialised random cell (trainable)."""
    torch.manual_seed(seed)
    cell, genotype = random_cell(spec, cfg, rng)
    out = copy.deepcopy(model)
    out.set_submodule(spec.name, cell)
    return out, genotype
