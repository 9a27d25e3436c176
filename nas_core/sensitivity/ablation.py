"""Block ablation: the network with one named block's learned function taken away.

As in an ablation study, the block is removed where the shapes allow it (an identity: a normal block whose input
and output have the same channels and scale) and otherwise re-initialised (its design kept, its weights drawn
again, trainable), so the rest of the network can be fine-tuned around the gap for a few steps.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from nas_core.models.blocks import BlockSpec


class Identity(nn.Module):
    """Passes the block's main input through; an up block's skip is not its input's shape, so it never gets one."""

    def forward(self, x: torch.Tensor, *rest) -> torch.Tensor:
        return x


def identity_allowed(spec: BlockSpec) -> bool:
    return spec.role == "normal" and spec.in_channels == spec.out_channels and spec.stride == 1 and spec.scale == 1


def reinitialised(block: nn.Module, seed: int) -> nn.Module:
    """A copy of `block` with every parameter and BatchNorm statistic drawn again, all of it trainable."""
    torch.manual_seed(seed)
    fresh = copy.deepcopy(block)
    for m in fresh.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
        if hasattr(m, "reset_running_stats"):
            m.reset_running_stats()
    return fresh.requires_grad_(True)


def ablated(model: nn.Module, spec: BlockSpec, seed: int) -> tuple[nn.Module, str]:
    """A copy of `model` with block `spec.name` ablated, and how: "identity" or "reinitialised"."""
    out = copy.deepcopy(model)
    if identity_allowed(spec):
        out.set_submodule(spec.name, Identity())
        return out, "identity"
    out.set_submodule(spec.name, reinitialised(out.get_submodule(spec.name), seed))
    return out, "reinitialised"
