"""Macro-architectures built of cells: the U-Net of cells for segmentation, DARTS's classification stack, and a
hand-designed U-Net with some of its blocks replaced by cells (partial search, nas_core.space.partial).

A macro is a plan (which cell type sits where, its channels and which earlier states feed it) walked by one
`MacroNetwork`; the supernet and the discrete network differ only in the cells they put into the plan.
"""
from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import nn

from nas_core.space import partial
from nas_core.space.cell import CellSlot, SpaceError
from nas_core.space.config import SpaceConfig
from nas_core.space.ops import FactorizedReduce, ReLUConvBN, Upsample2x


def preprocess(C_in: int, C: int, resample: int, affine: bool) -> nn.Module:
    if resample == 2:
        return FactorizedReduce(C_in, C, affine=affine)
    if resample == -2:
        # Project at the coarse scale, then upsample: the same parameters as the other way round, 4x cheaper.
        return nn.Sequential(ReLUConvBN(C_in, C, 1, 1, 0, affine), Upsample2x())
    return ReLUConvBN(C_in, C, 1, 1, 0, affine)


class _Planner:
    def __init__(self, stem_channels: int, multipliers: dict[str, int]):
        self.states = [(stem_channels, 0)]  # (channels, scale) of every state; 0 is the stem
        self.slots: list[CellSlot] = []
        self.mult = multipliers

    def add(self, cell_type: str, role: str, C: int, i0: int, i1: int) -> int:
        (c_pp, sc_pp), (c_p, sc_p) = self.states[i0], self.states[i1]
        if role == "up":
            scale, resample0 = sc_p - 1, 1
            assert sc_pp == scale, "an up cell's input 0 is the encoder skip at the target scale"
        else:
            scale = sc_p + (1 if role == "down" else 0)
            resample0 = {0: 1, 1: 2, -1: -2}[sc_p - sc_pp]
        self.slots.append(CellSlot(len(self.slots), cell_type, role, C, c_pp, c_p, resample0, (i0, i1)))
        self.states.append((self.mult[cell_type] * C, scale))
        return len(self.states) - 1


def unet_plan(space: SpaceConfig, multipliers: dict[str, int]) -> tuple[list[CellSlot], int]:
    """Stem; per scale a down cell then normal cells; per scale back an up cell fed by the encoder skip, then
    normal cells. Node channels double with every halving, as in DARTS's reduction cells."""
    C0, n = space.channels, space.normal_cells_per_scale
    p = _Planner(C0, multipliers)
    skips, prev_prev, prev = {0: 0}, 0, 0
    for d in range(1, space.depth + 1):
        prev_prev, prev = prev, p.add("down", "down", C0 * 2**d, prev_prev, prev)
        for _ in range(n):
            prev_prev, prev = prev, p.add("normal", "normal", C0 * 2**d, prev_prev, prev)
        skips[d] = prev
    for d in range(space.depth - 1, -1, -1):
        prev_prev, prev = prev, p.add("up", "up", C0 * 2**d, skips[d], prev)
        for _ in range(n):
            prev_prev, prev = prev, p.add("normal", "normal", C0 * 2**d, prev_prev, prev)
    return p.slots, p.states[-1][0]


def darts_plan(space: SpaceConfig, multipliers: dict[str, int], stem_multiplier: int = 3) -> tuple[list[CellSlot], int, int]:
    """DARTS's stack: `layers` cells, reduction cells (doubling channels) at L/3 and 2L/3."""
    C, L = space.channels, space.layers
    p = _Planner(stem_multiplier * C, multipliers)
    aux_after = -1
    for i in range(L):
        reduction = i in (L // 3, 2 * L // 3)
        if reduction:
            C *= 2
        n = len(p.states)
        p.add("reduce" if reduction else "normal", "down" if reduction else "normal", C, max(0, n - 2), n - 1)
        if i == 2 * L // 3:
            aux_after = i
    return p.slots, p.states[-1][0], aux_after


class AuxiliaryHeadCIFAR(nn.Module):
    """DARTS's auxiliary head (for 8x8 inputs; an adaptive pool lets larger images through without new parameters)."""

    def __init__(self, C: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if x.shape[-1] != 1 or x.shape[-2] != 1:
            x = x.mean((2, 3), keepdim=True)
        return self.classifier(x.flatten(1))


class MacroNetwork(nn.Module):
    """Stem, the planned cells, head; or a backbone whose marked blocks run the cells. `make_cell(slot)` supplies
    the cells; subclasses pass extra cell inputs."""

    _frozen_blocks: tuple[str, ...] = ()

    def __init__(self, space: SpaceConfig, multipliers: dict[str, int], make_cell: Callable[[CellSlot], nn.Module],
                 auxiliary: bool = False, load_init: bool = True):
        super().__init__()
        self.space = space
        self.macro = space.macro
        self._aux_after = -1
        if space.macro == "unet":
            self.slots, c_last = unet_plan(space, multipliers)
            self.stem = nn.Sequential(nn.Conv2d(space.in_channels, space.channels, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(space.channels))
            self.head = nn.Conv2d(c_last, space.num_classes, 1)
        elif space.macro in partial.BACKBONE_MACROS:
            self.backbone, self.slots, self._places, frozen = partial.build(space, multipliers, load_init)
            self._frozen_blocks = tuple(frozen)
        else:
            self.slots, c_last, self._aux_after = darts_plan(space, multipliers)
            c_stem = 3 * space.channels
            self.stem = nn.Sequential(nn.Conv2d(space.in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
            self.global_pooling = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(c_last, space.num_classes)
        self.cells = nn.ModuleList(make_cell(slot) for slot in self.slots)
        self.auxiliary = auxiliary and space.macro == "darts-classifier"
        if self.auxiliary:
            c_aux = multipliers["reduce"] * self.slots[self._aux_after].C
            self.auxiliary_head = AuxiliaryHeadCIFAR(c_aux, space.num_classes)

    def train(self, mode: bool = True) -> "MacroNetwork":
        super().train(mode)
        # Frozen backbone blocks stay in eval mode: BatchNorm neither updates its statistics nor uses the batch's.
        for name in self._frozen_blocks:
            self.backbone.get_submodule(name).eval()
        return self

    def _run_cell(self, cell: nn.Module, slot: CellSlot, s0: torch.Tensor, s1: torch.Tensor, ctx) -> torch.Tensor:
        return cell(s0, s1)

    def _context(self):
        return None

    def _forward_backbone(self, x: torch.Tensor) -> torch.Tensor:
        partial.check_sides(x, self.space, self.slots)
        ctx = self._context()
        for place, slot, cell in zip(self._places, self.slots, self.cells):
            place.run = functools.partial(self._run_cell, cell, slot, ctx=ctx)
        try:
            return self.backbone(x)
        finally:  # the places hold this pass's tensors only while it runs (a copy of the network holds none)
            for place in self._places:
                place.run = None

    def forward(self, x: torch.Tensor):
        if self.macro in partial.BACKBONE_MACROS:
            return self._forward_backbone(x)
        if self.macro == "unet":
            k = 2**self.space.depth
            if x.shape[-1] % k or x.shape[-2] % k:
                raise SpaceError(f"input {tuple(x.shape[-2:])}: a U-Net of depth {self.space.depth} needs sides divisible "
                                 f"by {k}; crop or pad the tiles")
        ctx = self._context()
        states = [self.stem(x)]
        logits_aux = None
        for slot, cell in zip(self.slots, self.cells):
            states.append(self._run_cell(cell, slot, states[slot.inputs[0]], states[slot.inputs[1]], ctx))
            if self.auxiliary and self.training and slot.index == self._aux_after:
                logits_aux = self.auxiliary_head(states[-1])
        if self.macro == "unet":
            return self.head(states[-1])
        logits = self.classifier(self.global_pooling(states[-1]).flatten(1))
        return (logits, logits_aux) if logits_aux is not None else logits
