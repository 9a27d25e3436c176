"""A ResNeXt-style U-Net (Xie et al., 2017, "Aggregated Residual Transformations"; Ronneberger et al., 2015):
the production-grade hand-designed reference of issue 18, built of named blocks so a partial search can swap one.

Blocks, in forward order: `stem`, `encoder.0..depth-1` (down), `bottleneck`, `decoder.0..depth-1` (up, deepest
first), `head`. `ResNeXtUNet.blocks()` lists each with its role and shape; `model.block(name)` returns it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas_core.models.blocks import NamedBlocks, resnext_unet_blocks


class ResNeXtBlock(nn.Module):
    """1x1 reduce -> 3x3 conv in `cardinality` groups of `group_width` channels -> 1x1 expand, plus the shortcut
    (identity, or a strided 1x1 projection when the shape changes: the paper's option B)."""

    def __init__(self, cin: int, cout: int, cardinality: int, group_width: int, stride: int = 1):
        super().__init__()
        width = cardinality * group_width
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        # The stride sits in the grouped 3x3 (as in the paper's template), not in the 1x1 that would drop 3/4 of it.
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if cin == cout and stride == 1 else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = F.relu(self.bn2(self.conv2(y)), inplace=True)
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x), inplace=True)


def _stage(cin: int, cout: int, blocks: int, cardinality: int, group_width: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(*(ResNeXtBlock(cin if i == 0 else cout, cout, cardinality, group_width, stride if i == 0 else 1)
                           for i in range(blocks)))


class _UpStage(nn.Module):
    """Upsample to the skip's size (so odd sides work), concatenate the skip, then ResNeXt blocks."""

    def __init__(self, cin: int, cskip: int, cout: int, blocks: int, cardinality: int, group_width: int):
        super().__init__()
        self.blocks = _stage(cin + cskip, cout, blocks, cardinality, group_width)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.blocks(torch.cat([x, skip], 1))


class ResNeXtUNet(NamedBlocks, nn.Module):
    """U-Net whose stages are ResNeXt blocks. Level i has `channels * 2**i` channels and group width
    `bottleneck_width * 2**i` (the paper doubles d with the width: 32x4d, 32x8d, ...), `cardinality` groups.

    The arguments are the later experiment block `{name: resnext_unet, channels, depth, cardinality,
    bottleneck_width}` one to one; `blocks` ResNeXt blocks per stage. Any input size works.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, channels: int = 16, depth: int = 3,
                 cardinality: int = 4, bottleneck_width: int = 4, blocks: int = 1):
        super().__init__()
        for arg, value in (("in_channels", in_channels), ("num_classes", num_classes), ("channels", channels),
                           ("depth", depth), ("cardinality", cardinality), ("bottleneck_width", bottleneck_width),
                           ("blocks", blocks)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ResNeXtUNet: {arg} must be an integer >= 1, got {value!r}")
        self.channels, self.depth, self.cardinality, self.bottleneck_width = channels, depth, cardinality, bottleneck_width
        widths = [channels * 2 ** i for i in range(depth + 1)]
        gw = [bottleneck_width * 2 ** i for i in range(depth + 1)]
        args = dict(blocks=blocks, cardinality=cardinality)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(inplace=True))
        self.encoder = nn.ModuleList(_stage(widths[i], widths[i + 1], group_width=gw[i + 1], stride=2, **args)
                                     for i in range(depth))
        self.bottleneck = _stage(widths[depth], widths[depth], group_width=gw[depth], **args)
        self.decoder = nn.ModuleList(_UpStage(widths[i + 1], widths[i], widths[i], group_width=gw[i], **args)
                                     for i in reversed(range(depth)))
        self.head = nn.Conv2d(channels, num_classes, 1)
        self._specs = resnext_unet_blocks(in_channels, num_classes, channels, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for stage in self.encoder:
            skips.append(stage(skips[-1]))
        y = self.bottleneck(skips.pop())
        for stage in self.decoder:
            y = stage(y, skips.pop())
        return self.head(y)
