"""The schema's rules for a partial search (no torch): a backbone macro, its marked blocks, their cell types.

A backbone macro is a hand-designed U-Net of nas_core.models; `search_blocks` names the blocks a searched cell of
the block's role replaces. Everything here is checked before a tensor exists, with messages naming the field.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas_core.models.blocks import BACKBONES, BlockSpec

if TYPE_CHECKING:
    from nas_core.space.config import SpaceConfig

# Macros that are a hand-designed network (nas_core.models) with some named blocks replaced by cells.
BACKBONE_MACROS = tuple(BACKBONES)
_PARTIAL_FIELDS = ("search_blocks", "backbone", "init_from", "freeze")


def backbone_blocks(space: "SpaceConfig") -> tuple[BlockSpec, ...]:
    return BACKBONES[space.macro].blocks(space.in_channels, space.num_classes, space.channels, space.depth)


def marked_roles(data: dict[str, Any], default_depth: int) -> list[str]:
    """The roles of the blocks `data` (a raw space dict) marks, in block order; unknown names are left to
    check_partial's message."""
    depth = data.get("depth", default_depth)
    if not isinstance(depth, int) or depth < 1:
        return []
    marked = data.get("search_blocks") or []
    specs = BACKBONES[data["macro"]].blocks(1, 2, 1, depth)
    return list(dict.fromkeys(s.role for s in specs if s.name in marked and s.role != "head"))


def check_partial(space: "SpaceConfig") -> None:
    """Raise ValueError naming the field: partial-search fields on a cell macro, an empty, unknown, repeated or
    head block, a cell type no marked block has (or one missing), a cell output that cannot match a block's
    channels, an unknown backbone argument, freeze without init_from."""
    if space.macro not in BACKBONE_MACROS:
        given = [f for f in _PARTIAL_FIELDS if getattr(space, f) != type(space).model_fields[f].get_default(
            call_default_factory=True)]
        if given:
            raise ValueError(f"space.{given[0]}: only a partial search has it; set space.macro to one of "
                             f"{', '.join(BACKBONE_MACROS)} (a hand-designed U-Net) or remove space.{given[0]}")
        return
    specs = {s.name: s for s in backbone_blocks(space)}
    names = ", ".join(n for n, s in specs.items() if s.role != "head")
    where = f"{space.macro} (depth {space.depth})"
    if not space.search_blocks:
        raise ValueError(f"space.search_blocks: a {space.macro} space searches at least one of its blocks; "
                         f"list some of: {names}")
    for name in space.search_blocks:
        if name not in specs:
            raise ValueError(f"space.search_blocks: {where} has no block {name!r}; its blocks: {names}")
        if specs[name].role == "head":
            raise ValueError(f"space.search_blocks: {name!r} is the classifier, not a cell's place; mark one of: {names}")
        if space.search_blocks.count(name) > 1:
            raise ValueError(f"space.search_blocks lists {name!r} twice; list each block once")
    roles = list(dict.fromkeys(specs[n].role for n in space.search_blocks))
    missing = [r for r in roles if r not in space.cells]
    if missing:
        block = next(n for n in space.search_blocks if specs[n].role == missing[0])
        raise ValueError(f"space.cells: block {block} is replaced by a {missing[0]!r} cell; add cells.{missing[0]}")
    extra = [t for t in space.cells if t not in roles]
    if extra:
        raise ValueError(f"space.cells.{extra[0]}: no marked block has role {extra[0]!r} (marked: "
                         f"{', '.join(f'{n} ({specs[n].role})' for n in space.search_blocks)}); remove cells.{extra[0]}")
    for name in space.search_blocks:
        spec, cell = specs[name], space.cells[specs[name].role]
        outputs = len(cell.concat) if cell.concat is not None else cell.nodes
        if spec.out_channels % outputs:
            raise ValueError(f"space.cells.{spec.role}: the cell concatenates {outputs} nodes, which does not divide "
                             f"block {name}'s {spec.out_channels} output channels; change cells.{spec.role}.nodes "
                             f"(or concat) or space.channels")
    extra_args = BACKBONES[space.macro].args
    for arg, value in space.backbone.items():
        if arg not in extra_args:
            allowed = ", ".join(extra_args) or "none (channels, depth, in_channels, num_classes are the space's)"
            raise ValueError(f"space.backbone.{arg}: {space.macro} takes no argument {arg!r}; it takes {allowed}")
        if value < 1:
            raise ValueError(f"space.backbone.{arg}: must be >= 1, got {value}")
    if space.freeze and not space.init_from:
        raise ValueError("space.freeze: freezing keeps the blocks not searched as a checkpoint has them; "
                         "set space.init_from to the backbone's checkpoint, or freeze: false")
