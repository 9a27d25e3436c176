"""Proxies from one gradient of the training loss: grad_norm and snip (Abdelfattah et al., 2021; Lee et al., 2019)."""
from __future__ import annotations

import torch
from torch import nn

from nas_core.proxies._common import loss, scored_layers, working_copy


def _grads(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    net = working_copy(model)
    loss(net, inputs, targets).backward()
    return [(m.weight.detach(), m.weight.grad if m.weight.grad is not None else torch.zeros_like(m.weight))
            for m in scored_layers(net)]


def grad_norm(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Sum over layers of the Euclidean norm of the loss gradient with respect to the layer's weight."""
    return float(sum(g.norm() for _, g in _grads(model, inputs, targets)))


def snip(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Connection sensitivity: sum over all weights of |w * dL/dw| (the gradient of the loss for a weight mask at 1)."""
    return float(sum((w * g).abs().sum() for w, g in _grads(model, inputs, targets)))


def gradient_scores(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """grad_norm and snip from one shared backward pass."""
    grads = _grads(model, inputs, targets)
    return {"grad_norm": float(sum(g.norm() for _, g in grads)), "snip": float(sum((w * g).abs().sum() for w, g in grads))}
