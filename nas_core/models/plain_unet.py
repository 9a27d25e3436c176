"""The hand-designed baseline: a plain U-Net (Ronneberger et al., 2015), so every searched cell has a reference."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas_core.models.blocks import NamedBlocks, plain_unet_blocks


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )


class _Down(_DoubleConv):
    """Max-pool, then two convs. The pool sits inside the block so that a cell of role down can take its place;
    the parameter names stay those of _DoubleConv, so older checkpoints still load."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.max_pool2d(x, 2))


class _Up(_DoubleConv):
    """Upsample to the skip's size, concatenate it, two convs: called as (x, skip) like an up cell."""

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return super().forward(torch.cat([x, skip], 1))


class PlainUNet(NamedBlocks, nn.Module):
    """Encoder of `depth` max-pool stages doubling the channels, decoder of bilinear upsampling plus skip concat.

    Any input size works: each decoder stage upsamples to its skip connection's size. Named blocks (`blocks()`):
    stem, down.i, up.i, head.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, channels: int = 16, depth: int = 3):
        super().__init__()
        if depth < 1 or channels < 1:
            raise ValueError(f"PlainUNet: depth and channels must be >= 1, got depth={depth}, channels={channels}")
        widths = [channels * 2 ** i for i in range(depth + 1)]
        self.stem = _DoubleConv(in_channels, widths[0])
        self.down = nn.ModuleList(_Down(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(_Up(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self._specs = plain_unet_blocks(in_channels, num_classes, channels, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        y = skips.pop()
        for block in self.up:
            y = block(y, skips.pop())
        return self.head(y)
