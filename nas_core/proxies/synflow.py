"""SynFlow (Tanaka et al., 2020) as a zero-cost proxy: the synaptic flow of the network with absolute
weights, batch norm off, in float64, on an input of ones; data-free, so the targets are not used."""
from __future__ import annotations

import torch
from torch import nn

from nas_core.proxies._common import main_output, scored_layers, working_copy


def _without_bn(model: nn.Module) -> None:
    # BN would rescale the flow by batch statistics of a constant input (zero variance): off, as in the papers.
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, nn.Identity())
        else:
            _without_bn(child)


def synflow(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> float:
    """Sum over all scored weights of |w| * dR/d|w|, R = sum of the outputs for a single input of ones."""
    net = working_copy(model, train=False)
    _without_bn(net)
    net = net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    main_output(net(ones)).sum().backward()
    total = torch.zeros((), dtype=torch.float64)
    for m in scored_layers(net):
        if m.weight.grad is not None:
            total = total + (m.weight.detach() * m.weight.grad).sum()
    return float(total)
