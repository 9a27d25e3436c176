"""jacob_cov (Mellor et al., 2020, first version of NASWOT): how uncorrelated the input Jacobians of a
minibatch are, scored from the eigenvalues of their correlation matrix."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nas_core.proxies._common import main_output, working_copy

_K = 1e-5


def jacob_cov(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> float:
    """-sum_i (log(v_i + k) + 1 / (v_i + k)), v the eigenvalues of the correlation of the rows
    J_n = d(sum of outputs of input n)/d input n, k = 1e-5."""
    net = working_copy(model)
    x = inputs.detach().clone().requires_grad_(True)
    main_output(net(x)).sum().backward()
    jac = x.grad.reshape(x.shape[0], -1).double().cpu().numpy()
    corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        # A constant Jacobian row has no correlation; the reference code then scores NaN: keep that, said.
        return float("nan")
    v = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(v + _K) + 1.0 / (v + _K)))
