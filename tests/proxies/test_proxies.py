"""Each zero-cost proxy against a value computed by hand on a two-layer network (conv 1x1 -> ReLU -> conv 1x1)."""
from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from nas_core.proxies import PROXIES, score_proxies


class _Tiny(nn.Module):
    """logits_k = b_k * relu(a * x), per pixel; optional BN after the first conv."""

    def __init__(self, a: float, b: tuple[float, float], bn: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(1) if bn else nn.Identity()
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(1, 2, 1, bias=False)
        with torch.no_grad():
            self.conv1.weight.fill_(a)
            self.conv2.weight.copy_(torch.tensor(b).view(2, 1, 1, 1))

    def forward(self, x):
        return self.conv2(self.relu(self.bn(self.conv1(x))))


A, B = 0.5, (1.0, -2.0)


def _gradients_by_hand():
    # Two one-pixel images x = 2 and x = -1, labels 1 and 0; cross-entropy averaged over the 2 pixels.
    # Image 1: r = relu(0.5 * 2) = 1, logits (1, -2). Image 2: r = 0, so it adds no gradient to a or b.
    e1, e2 = math.exp(1.0), math.exp(-2.0)
    p = (e1 / (e1 + e2), e2 / (e1 + e2))
    dz = (p[0] / 2, (p[1] - 1) / 2)  # dL/dlogits of image 1
    db = (dz[0] * 1.0, dz[1] * 1.0)  # times r = 1
    da = (dz[0] * B[0] + dz[1] * B[1]) * 2.0  # through b_k, the open ReLU, and x = 2
    return da, db


def _batch():
    return torch.tensor([2.0, -1.0]).view(2, 1, 1, 1), torch.tensor([1, 0]).view(2, 1, 1)


def test_grad_norm_by_hand():
    da, db = _gradients_by_hand()
    x, y = _batch()
    assert PROXIES["grad_norm"](_Tiny(A, B), x, y) == pytest.approx(abs(da) + math.hypot(*db), rel=1e-6)


def test_snip_by_hand():
    da, db = _gradients_by_hand()
    x, y = _batch()
    expected = abs(A * da) + abs(B[0] * db[0]) + abs(B[1] * db[1])
    assert PROXIES["snip"](_Tiny(A, B), x, y) == pytest.approx(expected, rel=1e-6)


def test_synflow_by_hand_with_absolute_weights_and_bn_off():
    # R = |b0| r + |b1| r with r = |a| * 1 on one pixel of ones; |a| dR/d|a| = |a|(|b0|+|b1|), |b_k| dR/d|b_k| = |a||b_k|.
    expected = 2 * abs(A) * (abs(B[0]) + abs(B[1]))
    x = torch.randn(4, 1, 1, 1)
    assert PROXIES["synflow"](_Tiny(-A, B), x, None) == pytest.approx(expected)  # the sign of a does not matter
    with_bn = _Tiny(A, B, bn=True)
    with torch.no_grad():
        with_bn.bn.weight.fill_(7.0)
        with_bn.bn.running_var.fill_(0.01)
    assert PROXIES["synflow"](with_bn, x, None) == pytest.approx(expected)  # BN is off


def test_naswot_by_hand():
    # a = 1 on three pixels: codes [1,0,0], [1,1,0], [0,1,1]; K = N_A - Hamming = [[3,2,0],[2,3,1],[0,1,3]], det 12.
    x = torch.tensor([[1.0, -1, -1], [1, 1, -1], [-1, 1, 1]]).view(3, 1, 1, 3)
    assert PROXIES["naswot"](_Tiny(1.0, B), x, None) == pytest.approx(math.log(12.0))


def test_jacob_cov_by_hand():
    # d(sum of outputs)/dx_p = (b0 + b1) * a * [x_p > 0]: rows -[1,0,0] and -[1,1,0], correlation 0.5,
    # eigenvalues 1.5 and 0.5.
    x = torch.tensor([[1.0, -1, -1], [1, 1, -1]]).view(2, 1, 1, 3)
    k = 1e-5
    expected = -sum(math.log(v + k) + 1 / (v + k) for v in (1.5, 0.5))
    assert PROXIES["jacob_cov"](_Tiny(1.0, B), x, None) == pytest.approx(expected, rel=1e-6)


def test_proxies_leave_the_network_as_it_was_and_reject_unknown_names():
    net = _Tiny(-A, B, bn=True).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(4, 1, 2, 2), torch.randint(0, 2, (4, 2, 2))
    scores = score_proxies(net, x, y)
    assert set(scores) == set(PROXIES)
    assert net.training and next(net.parameters()).dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="unknown proxy 'fisher'"):
        score_proxies(net, x, y, ["fisher"])


def test_proxies_on_a_tiny_unet_from_the_space():
    from nas_core.discrete import CellSearchSpace
    from nas_core.space import Genotype, build_network
    from nas_core.space.config import SpaceConfig

    cfg = SpaceConfig(channels=4, depth=1)
    genotype = Genotype.from_dict(CellSearchSpace(cfg).sample(random.Random(0)))
    torch.manual_seed(0)
    net = build_network(genotype, cfg, auxiliary=False)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 2, (4, 32, 32))
    scores = score_proxies(net, x, y)
    assert all(math.isfinite(v) for v in scores.values()), scores
    assert scores["synflow"] > 0 and scores["grad_norm"] > 0 and scores["snip"] > 0


def test_score_proxies_shares_one_backward_for_grad_norm_and_snip_with_the_same_values():
    x, y = _batch()
    net = _Tiny(A, B)
    together = score_proxies(net, x, y, ["snip", "grad_norm"])
    assert list(together) == ["snip", "grad_norm"]
    assert together["snip"] == pytest.approx(PROXIES["snip"](net, x, y))
    assert together["grad_norm"] == pytest.approx(PROXIES["grad_norm"](net, x, y))
