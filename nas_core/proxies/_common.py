"""What the proxies share: the layers they score, the main output of a network, the training loss."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def scored_layers(model: nn.Module) -> list[nn.Module]:
    """Convolutions and linear layers: the parameters the pruning-at-init papers score."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def main_output(out: object) -> torch.Tensor:
    # A network with an auxiliary head returns (logits, aux); the proxies look at the main logits only.
    return out[0] if isinstance(out, (tuple, list)) else out


def loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the logits, per image or per pixel, averaged: the loss the candidate would train on."""
    return F.cross_entropy(main_output(model(inputs)), targets)


def working_copy(model: nn.Module, train: bool = True) -> nn.Module:
    net = copy.deepcopy(model)
    net.train(train)
    net.zero_grad(set_to_none=True)
    return net
