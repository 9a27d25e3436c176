"""The named blocks of the hand-designed U-Nets, as data (no torch): what a partial search may replace.

The models list themselves with these functions, and the experiment schema checks `space.search_blocks` with
them before anything is built, so a block's name, role and shape are written down once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple


@dataclass(frozen=True)
class BlockSpec:
    """One named block: its role (normal | down | up, the cell type that may replace it; head: the classifier),
    channels in (from the previous block; for up blocks also the skip's) and out, and how it changes the scale
    (stride 2 halves the sides, scale 2 doubles them to the skip's)."""

    name: str
    role: str
    in_channels: int
    out_channels: int
    stride: int = 1
    scale: int = 1
    skip_channels: int = 0


class NamedBlocks:
    """`blocks()` and `block(name)` for a model that sets `_specs` (its BlockSpec tuple, in forward order)."""

    _specs: tuple[BlockSpec, ...]

    def blocks(self) -> tuple[BlockSpec, ...]:
        """The named blocks in forward order, for a partial search (swap one for a cell of its role) or an ablation."""
        return self._specs

    def block(self, name: str):
        names = [s.name for s in self._specs]
        if name not in names:
            raise KeyError(f"{type(self).__name__} has no block {name!r}; blocks: {', '.join(names)}")
        return self.get_submodule(name)


def _widths(channels: int, depth: int) -> list[int]:
    return [channels * 2 ** i for i in range(depth + 1)]


def resnext_unet_blocks(in_channels: int, num_classes: int, channels: int, depth: int) -> tuple[BlockSpec, ...]:
    """stem, encoder.0..depth-1 (down), bottleneck, decoder.0..depth-1 (up, deepest first), head."""
    w = _widths(channels, depth)
    specs = [BlockSpec("stem", "normal", in_channels, channels)]
    specs += [BlockSpec(f"encoder.{i}", "down", w[i], w[i + 1], stride=2) for i in range(depth)]
    specs.append(BlockSpec("bottleneck", "normal", w[depth], w[depth]))
    specs += [BlockSpec(f"decoder.{j}", "up", w[i + 1], w[i], scale=2, skip_channels=w[i])
              for j, i in enumerate(reversed(range(depth)))]
    specs.append(BlockSpec("head", "head", channels, num_classes))
    return tuple(specs)


def plain_unet_blocks(in_channels: int, num_classes: int, channels: int, depth: int) -> tuple[BlockSpec, ...]:
    """stem, down.0..depth-1 (max-pool then two convs), up.0..depth-1 (deepest first), head. The deepest down
    block is the plain U-Net's bottleneck; it has no block of its own."""
    w = _widths(channels, depth)
    specs = [BlockSpec("stem", "normal", in_channels, channels)]
    specs += [BlockSpec(f"down.{i}", "down", w[i], w[i + 1], stride=2) for i in range(depth)]
    specs += [BlockSpec(f"up.{j}", "up", w[i + 1], w[i], scale=2, skip_channels=w[i])
              for j, i in enumerate(reversed(range(depth)))]
    specs.append(BlockSpec("head", "head", channels, num_classes))
    return tuple(specs)


class Backbone(NamedTuple):
    """A hand-designed network a partial search runs in: its class in nas_core.models, its block list, and its
    constructor arguments beyond in_channels, num_classes, channels and depth (which the space already has)."""

    model: str
    blocks: Callable[[int, int, int, int], tuple[BlockSpec, ...]]
    args: tuple[str, ...]


# By macro name. tests/models/test_partial_blocks.py holds `args` to the constructors' signatures.
BACKBONES = {
    "resnext-unet": Backbone("ResNeXtUNet", resnext_unet_blocks, ("cardinality", "bottleneck_width", "blocks")),
    "plain-unet": Backbone("PlainUNet", plain_unet_blocks, ()),
}
