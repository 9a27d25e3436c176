"""Gradient importance of each named block, from the validation loss: how much the loss leans on its weights.

Two per-block figures, in the spirit of Fisher pruning (Theis et al., 2018) and Taylor-expansion importance
(Molchanov et al., 2019), taken over a whole block instead of one filter:
- taylor: the mean over validation batches of (sum over the block's weights of g * w)^2, the squared first-order
  change of the loss if the block's weights were set to zero;
- fisher: the mean over batches of the sum of g^2, the diagonal empirical Fisher information of its weights.
A block the network does not use (its output multiplied by zero) gets exactly 0 on both: no gradient reaches it.
Frozen weights are measured too (their gradient is taken on a copy), since the question is what they do.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from nas_core.models.blocks import BlockSpec
from nas_core.train.loop import main_logits, segmentation_loss


def block_importance(model: nn.Module, specs: list[BlockSpec], loader, device, max_batches: int | None = None
                     ) -> dict[str, dict[str, float]]:
    """{block name: {"taylor", "fisher", "taylor_share"}}; the share is of the sum over `specs` (0 if all are 0)."""
    net = copy.deepcopy(model).to(device).requires_grad_(True)
    net.eval()  # BatchNorm from its running statistics: the network as it is scored
    params = {s.name: list(net.get_submodule(s.name).parameters()) for s in specs}
    taylor = {s.name: 0.0 for s in specs}
    fisher = {s.name: 0.0 for s in specs}
    n = 0
    for images, masks in loader:
        if max_batches is not None and n >= max_batches:
            break
        net.zero_grad(set_to_none=True)
        segmentation_loss(main_logits(net(images.to(device))), masks.to(device)).backward()
        for name, ps in params.items():
            grads = [(p.grad, p) for p in ps if p.grad is not None]
            taylor[name] += float(sum((g * p.detach()).sum() for g, p in grads)) ** 2 if grads else 0.0
            fisher[name] += float(sum(g.pow(2).sum() for g, _ in grads)) if grads else 0.0
        n += 1
    total = sum(taylor.values())
    return {name: {"taylor": taylor[name] / max(n, 1), "fisher": fisher[name] / max(n, 1),
                   "taylor_share": taylor[name] / total if total > 0 else 0.0} for name in taylor}
