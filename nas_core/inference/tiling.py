"""Sliding windows over a scene and their blending: where the tiles go, how much each pixel of a tile counts.

A pixel covered by one window keeps that window's probability exactly (its weight divides out); where windows
overlap, each counts by its distance from its own edge, so no seam shows where the network's context is cut.
"""
from __future__ import annotations

import numpy as np


def window_starts(length: int, tile: int, step: int) -> list[int]:
    """Offsets of the windows along one axis: every `step`, the last flush with the end (a scene shorter than a
    tile gets one window, padded)."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def blend_weights(tile: int, overlap: int) -> np.ndarray:
    """(tile, tile) float32 weights: 1 inside, falling linearly towards the edge over `overlap` pixels, never 0
    (a scene's own border is covered by one window only)."""
    i = np.arange(tile, dtype=np.float64)
    ramp = np.minimum(i + 0.5, tile - i - 0.5) / max(overlap, 1)
    w1 = np.clip(ramp, 1e-3, 1.0)
    return np.outer(w1, w1).astype(np.float32)


def cut(strip: np.ndarray, x0: int, tile: int) -> np.ndarray:
    """The (tile, tile, C) window of a (rows, W, C) strip at column x0, padded by mirroring where the scene ends."""
    win = strip[:tile, x0:x0 + tile]
    ph, pw = tile - win.shape[0], tile - win.shape[1]
    if ph or pw:
        win = np.pad(win, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
    return win


class StripBlender:
    """Accumulates weighted tile probabilities for one band of windows at a time, holding only `tile` rows of the
    scene: after the band at `y0`, rows [y0, next_y0) are final and `flush` hands them out."""

    def __init__(self, num_classes: int, width: int, tile: int, overlap: int):
        self.tile, self.width = tile, width
        self.weights = blend_weights(tile, overlap)
        self.acc = np.zeros((num_classes, tile, width), np.float32)
        self.wsum = np.zeros((tile, width), np.float32)
        self.top = 0  # the scene row of the buffer's first row

    def add(self, probs: np.ndarray, y0: int, x0: int) -> None:
        """One window's (K, tile, tile) probabilities at scene offset (y0, x0); y0 is the current band's."""
        r = y0 - self.top
        w = min(self.tile, self.width - x0)
        self.acc[:, r:r + self.tile, x0:x0 + w] += probs[:, :, :w] * self.weights[:, :w]
        self.wsum[r:r + self.tile, x0:x0 + w] += self.weights[:, :w]

    def flush(self, until: int) -> np.ndarray:
        """The blended (K, rows, W) probabilities of scene rows [top, until), and the buffer moved down to `until`."""
        n = until - self.top
        out = self.acc[:, :n] / np.maximum(self.wsum[:n], 1e-12)
        keep = self.tile - n
        self.acc[:, :keep] = self.acc[:, n:].copy()
        self.acc[:, keep:] = 0
        self.wsum[:keep] = self.wsum[n:].copy()
        self.wsum[keep:] = 0
        self.top = until
        return out
