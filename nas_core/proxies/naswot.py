"""NASWOT (Mellor et al., 2021): the log-determinant of the kernel of binary ReLU codes of a minibatch.
Inputs whose activation patterns differ more make the kernel better conditioned: a sign of a network
that tells them apart before training."""
from __future__ import annotations

import torch
from torch import nn

from nas_core.proxies._common import working_copy


def naswot(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> float:
    """log|K|, K[i, j] = N_A - Hamming(c_i, c_j) over all N_A ReLU units, c_i the code of input i."""
    net = working_copy(model)
    n = inputs.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64, device=inputs.device)

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        # The output of a ReLU is > 0 exactly where its input is (and stays right for an in-place ReLU).
        code = (out.detach().reshape(n, -1) > 0).double()
        kernel.add_(code @ code.T + (1 - code) @ (1 - code).T)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    if not handles:
        raise ValueError("naswot: the network has no nn.ReLU module to read activation codes from")
    with torch.no_grad():
        net(inputs)
    for h in handles:
        h.remove()
    return float(torch.slogdet(kernel)[1])
