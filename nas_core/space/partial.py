"""Partial search: a hand-designed U-Net of nas_core.models as the macro, its marked blocks replaced by cells.

The backbone is built as its class builds it (weights from `space.init_from` if given); each block named in
`space.search_blocks` becomes a `CellPlace`, through which the MacroNetwork runs the cell of that block's role;
every other block keeps its design and, with `space.freeze`, its weights and BatchNorm statistics bit for bit.
The schema's rules (names, roles, channels) are in partial_schema; this module builds.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from nas_core.data.roots import OutsideDataRoots, confine_data_path
from nas_core.space.cell import CellSlot, SpaceError
from nas_core.space.config import SpaceConfig
from nas_core.space.partial_schema import BACKBONE_MACROS, backbone_blocks

# Where a worker's runs may read a checkpoint from: the data roots and the runs folder, as the platform sets them.
ROOTS_ENV = ("NASFORGE_DATA_ROOTS", "NASFORGE_RUNS_DIR")


class CellPlace(nn.Module):
    """A marked block's place: takes the block's call, (x) or (x, skip) for an up block, and hands the cell its
    (s0, s1) inputs: (x, x), or (skip, x) as an up cell of the U-Net of cells has them. `run` is set by the
    owning MacroNetwork for one forward pass (it carries that pass's architecture weights)."""

    def __init__(self, name: str, role: str):
        super().__init__()
        self.name, self.role = name, role
        self.run: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if self.run is None:
            raise RuntimeError(f"block {self.name} is a searched cell's place; call the network, not the backbone")
        return self.run(skip, x) if self.role == "up" else self.run(x, x)

    def extra_repr(self) -> str:
        return f"{self.name!r}, role={self.role!r}"


def init_roots() -> list[Path] | None:
    """The folders init_from must lie in when the platform set them (NASFORGE_DATA_ROOTS, os.pathsep-separated,
    and NASFORGE_RUNS_DIR); None for a user's own `nasforge search`, which may read any file it can."""
    roots = [p for var in ROOTS_ENV for p in os.environ.get(var, "").split(os.pathsep) if p.strip()]
    return roots or None


def _backbone(space: SpaceConfig) -> nn.Module:
    from nas_core.models.hand_designed import build

    try:
        return build(space.macro, space.in_channels, space.num_classes, space.channels, space.depth, space.backbone)
    except (TypeError, ValueError) as exc:
        raise SpaceError(f"space.backbone: {exc}") from None


def _load_init(model: nn.Module, space: SpaceConfig, roots: list[Path] | None) -> None:
    from nas_core.models.weights import load_weights

    path = Path(space.init_from)
    if roots is not None:
        try:
            path = confine_data_path(path, roots, base=Path.cwd(), field="space.init_from")
        except OutsideDataRoots as exc:
            raise SpaceError(str(exc)) from None
    try:
        load_weights(model, path)
    except FileNotFoundError as exc:
        raise SpaceError(f"space.init_from: {exc}") from None
    except ValueError as exc:
        args = dict(in_channels=space.in_channels, num_classes=space.num_classes, channels=space.channels,
                    depth=space.depth, **space.backbone)
        built = ", ".join(f"{k}={v}" for k, v in args.items())
        raise SpaceError(f"space.init_from: {exc}\nThis space builds {type(model).__name__}({built}) "
                         f"(macro {space.macro}); give a checkpoint of that network.") from None


def backbone(space: SpaceConfig, load_init: bool = True) -> nn.Module:
    """The space's hand-designed network as its class builds it, with space.init_from's weights (read and confined
    to the platform's roots as a search reads them) unless load_init is False."""
    model = _backbone(space)
    if space.init_from and load_init:
        _load_init(model, space, init_roots())
    return model


def build(space: SpaceConfig, multipliers: dict[str, int], load_init: bool = True
          ) -> tuple[nn.Module, list[CellSlot], list[CellPlace], list[str]]:
    """The backbone with a CellPlace in each marked block; the slots of the cells (in block order); the places;
    the names of the frozen blocks (every block not searched, the head included, when space.freeze).
    load_init=False leaves out init_from, for a caller that loads the whole network's weights next."""
    model = backbone(space, load_init=load_init)
    slots, places = [], []
    for spec in backbone_blocks(space):
        if spec.name not in space.search_blocks:
            continue
        outputs = multipliers[spec.role]
        if spec.out_channels % outputs:
            raise SpaceError(f"cell type {spec.role!r} concatenates {outputs} nodes, which does not divide block "
                             f"{spec.name}'s {spec.out_channels} output channels; use a cell whose concat divides it")
        c_pp = spec.skip_channels if spec.role == "up" else spec.in_channels
        slots.append(CellSlot(len(slots), spec.role, spec.role, spec.out_channels // outputs, c_pp, spec.in_channels,
                              1, (0, 0)))
        place = CellPlace(spec.name, spec.role)
        model.set_submodule(spec.name, place)
        places.append(place)
    frozen = [s.name for s in backbone_blocks(space) if s.name not in space.search_blocks] if space.freeze else []
    for name in frozen:
        model.get_submodule(name).requires_grad_(False)
    return model, slots, places, frozen


def check_sides(x: torch.Tensor, space: SpaceConfig, slots: list[CellSlot]) -> None:
    """The backbone takes any size, but a searched down or up cell halves or doubles exactly."""
    k = 2 ** space.depth
    if any(s.role != "normal" for s in slots) and (x.shape[-1] % k or x.shape[-2] % k):
        raise SpaceError(f"input {tuple(x.shape[-2:])}: a searched down or up block in a U-Net of depth {space.depth} "
                         f"needs sides divisible by {k}; crop or pad the tiles")
