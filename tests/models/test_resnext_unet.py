"""The ResNeXt U-Net baseline (issue 18): shapes at any size, parameters by the paper's formula, named blocks whose
listing matches what a forward pass sees, grouped convolutions, and that it trains. Tiny: C=8, 32 px."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nas_core.models import PlainUNet, ResNeXtBlock, ResNeXtUNet


def block_params(cin: int, cout: int, cardinality: int, d: int) -> int:
    """Xie et al.'s block counted by hand: 1x1 cin->C*d, 3x3 in C groups of d->d, 1x1 C*d->cout, a BatchNorm
    (weight, bias) after each, and a 1x1 projection + BatchNorm when the shape changes."""
    w = cardinality * d
    n = cin * w + 2 * w + cardinality * (d * d * 9) + 2 * w + w * cout + 2 * cout
    return n + (cin * cout + 2 * cout if cin != cout else 0)


def unet_params(in_ch: int, classes: int, c: int, depth: int, cardinality: int, d: int) -> int:
    widths = [c * 2 ** i for i in range(depth + 1)]
    n = in_ch * c * 9 + 2 * c + c * classes + classes  # stem conv+BN, head 1x1 with bias
    n += sum(block_params(widths[i], widths[i + 1], cardinality, d * 2 ** (i + 1)) for i in range(depth))
    n += block_params(widths[depth], widths[depth], cardinality, d * 2 ** depth)
    n += sum(block_params(widths[i + 1] + widths[i], widths[i], cardinality, d * 2 ** i) for i in range(depth))
    return n


def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("size", [(32, 32), (33, 31), (17, 20)])
def test_output_has_the_input_size(size):
    torch.manual_seed(0)
    net = ResNeXtUNet(in_channels=1, num_classes=3, channels=8, depth=2, cardinality=2, bottleneck_width=2).eval()
    assert net(torch.randn(2, 1, *size)).shape == (2, 3, *size)


@pytest.mark.parametrize("cardinality,d", [(2, 2), (4, 2), (2, 4), (4, 4)])
def test_parameters_follow_the_formula(cardinality, d):
    assert count(ResNeXtBlock(8, 16, cardinality, d, stride=2)) == block_params(8, 16, cardinality, d)
    assert count(ResNeXtBlock(16, 16, cardinality, d)) == block_params(16, 16, cardinality, d)
    net = ResNeXtUNet(3, 2, channels=8, depth=2, cardinality=cardinality, bottleneck_width=d)
    assert count(net) == unet_params(3, 2, 8, 2, cardinality, d)


def test_grouped_conv_is_grouped():
    net = ResNeXtUNet(3, 2, channels=8, depth=2, cardinality=4, bottleneck_width=2)
    blocks = [m for m in net.modules() if isinstance(m, ResNeXtBlock)]
    assert len(blocks) == 2 + 1 + 2
    for b in blocks:
        width = b.conv1.out_channels
        assert b.conv2.groups == 4
        assert tuple(b.conv2.weight.shape) == (width, width // 4, 3, 3)


@pytest.mark.parametrize("net,names,roles", [
    (lambda: ResNeXtUNet(3, 2, channels=8, depth=2, cardinality=2, bottleneck_width=2),
     ["stem", "encoder.0", "encoder.1", "bottleneck", "decoder.0", "decoder.1", "head"],
     ["normal", "down", "down", "normal", "up", "up", "head"]),
    (lambda: PlainUNet(3, 2, channels=4, depth=2),
     ["stem", "down.0", "down.1", "up.0", "up.1", "head"], ["normal", "down", "down", "up", "up", "head"]),
], ids=["resnext", "plain"])
def test_block_listing_matches_a_forward_pass(net, names, roles):
    net = net().eval()
    specs = net.blocks()
    assert [s.name for s in specs] == names
    assert [s.role for s in specs] == roles
    seen = {}
    hooks = [net.block(s.name).register_forward_hook(
        lambda mod, args, out, name=s.name: seen.__setitem__(name, ([tuple(a.shape) for a in args], tuple(out.shape))))
        for s in specs]
    net(torch.randn(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    for s in specs:
        ins, out = seen[s.name]
        assert ins[0][1] == s.in_channels and out[1] == s.out_channels, s
        if s.role == "up":
            assert ins[1][1] == s.skip_channels and out[2:] == ins[1][2:] and out[2] == ins[0][2] * s.scale, s
        else:
            assert out[2] * s.stride == ins[0][2] and out[3] * s.stride == ins[0][3], s
    with pytest.raises(KeyError, match="has no block .decoder.5.; blocks: stem"):
        net.block("decoder.5")


@pytest.mark.parametrize("arg,value", [("depth", 0), ("cardinality", 0), ("bottleneck_width", -1), ("channels", 2.5)])
def test_bad_arguments_name_the_argument(arg, value):
    with pytest.raises(ValueError, match=rf"\b{arg} must be an integer"):
        ResNeXtUNet(**{arg: value})


def test_a_few_sgd_steps_lower_the_loss():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 24, 24)
    y = (x[:, 0] > 0.3).long()  # a pixel's class is readable from its own value: learnable in a few steps
    net = ResNeXtUNet(3, 2, channels=8, depth=1, cardinality=2, bottleneck_width=2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(10):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses
