"""The built-in synthetic data set: helicopters on satellite tiles, for demos and fast tests.

Each tile has textured ground, roads and buildings (unlabelled distractors), sometimes a helipad, and zero to
three helicopters (fuselage, tail boom, fin, and a rotor drawn as a disc or as blades) at random rotation and
scale, each with a shadow. The mask labels helicopter pixels 1 and everything else 0. Tile i depends only on
(seed, i), so a tile is the same whatever the data set's length.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

_GROUNDS = np.array([[0.36, 0.45, 0.28], [0.62, 0.56, 0.42], [0.45, 0.45, 0.46], [0.50, 0.48, 0.36]])
_BODIES = np.array([[0.22, 0.26, 0.18], [0.85, 0.86, 0.86], [0.30, 0.31, 0.34], [0.60, 0.12, 0.10]])


class _Canvas:
    """Pixel-centre coordinates of one tile and the shapes drawn on them (boolean masks)."""

    def __init__(self, size: int):
        self.size = size
        self.y, self.x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5

    def local(self, cx, cy, angle):
        c, s = np.cos(angle), np.sin(angle)
        dx, dy = self.x - cx, self.y - cy
        return dx * c + dy * s, -dx * s + dy * c

    def rect(self, cx, cy, angle, u0, u1, half_w):
        u, v = self.local(cx, cy, angle)
        return (u >= u0) & (u <= u1) & (np.abs(v) <= max(half_w, 0.6))

    def ellipse(self, cx, cy, angle, a, b):
        u, v = self.local(cx, cy, angle)
        return (u / max(a, 0.7)) ** 2 + (v / max(b, 0.7)) ** 2 <= 1.0

    def disc(self, cx, cy, r):
        return (self.x - cx) ** 2 + (self.y - cy) ** 2 <= r * r


def _ground(rng, size):
    base = _GROUNDS[rng.integers(len(_GROUNDS))] + rng.normal(0, 0.04, 3)
    img = np.empty((3, size, size), np.float32)
    img[:] = base[:, None, None]
    # Smooth blotches at two scales plus pixel grain: a texture the network cannot solve by colour alone.
    for cells, amp in ((4, 0.10), (12, 0.05)):
        coarse = rng.normal(0, 1, (cells + 1, cells + 1)).astype(np.float32)
        field = ndimage.zoom(coarse, size / cells, order=1)[:size, :size]
        img += amp * field[None]
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    return img


def _paint(img, mask, colour, alpha=1.0):
    for ch in range(3):
        img[ch][mask] = (1 - alpha) * img[ch][mask] + alpha * colour[ch]


def _shift(mask, dx, dy):
    out = np.zeros_like(mask)
    h, w = mask.shape
    dx, dy = int(round(dx)), int(round(dy))
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = mask[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def _helicopter(cv, rng, cx, cy, length):
    """Silhouette parts of one helicopter; returns (body, rotor, rotor_is_disc)."""
    ang = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(ang), np.sin(ang)
    body = cv.ellipse(cx, cy, ang, 0.32 * length, 0.13 * length)
    body |= cv.rect(cx, cy, ang, -0.95 * length, -0.2 * length, 0.035 * length)  # tail boom
    fin_x, fin_y = cx - 0.9 * length * c, cy - 0.9 * length * s
    body |= cv.rect(fin_x, fin_y, ang + np.pi / 2, -0.12 * length, 0.12 * length, 0.03 * length)
    r = 0.55 * length
    if rng.random() < 0.4:
        return body, cv.disc(cx, cy, r), True
    rotor = np.zeros_like(body)
    blades = int(rng.integers(2, 6))
    start = rng.uniform(0, 2 * np.pi)
    for k in range(blades):
        rotor |= cv.rect(cx, cy, start + 2 * np.pi * k / blades, 0, r, 0.03 * length)
    return body, rotor, False


def _tile(seed: int, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, index])
    cv = _Canvas(size)
    img = _ground(rng, size)
    sun = rng.uniform(0, 2 * np.pi)
    shadow_len = rng.uniform(0.02, 0.05) * size
    sdx, sdy = shadow_len * np.cos(sun), shadow_len * np.sin(sun)
    # Distractors: roads and buildings are unlabelled, with shadows, so "dark blob" is not "helicopter".
    for _ in range(rng.integers(0, 3)):
        road = cv.rect(rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0, np.pi), -2 * size, 2 * size,
                       rng.uniform(0.02, 0.06) * size)
        _paint(img, road, np.full(3, rng.uniform(0.3, 0.55)), 0.9)
    for _ in range(rng.integers(0, 4)):
        bx, by, ba = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0, np.pi)
        w, h = rng.uniform(0.06, 0.2, 2) * size
        b = cv.rect(bx, by, ba, -w, w, h)
        _paint(img, _shift(b, sdx, sdy) & ~b, np.zeros(3), 0.45)
        _paint(img, b, rng.uniform(0.35, 0.8, 3), 1.0)
    mask = np.zeros((size, size), bool)
    n_heli = int(rng.choice([0, 1, 1, 2, 3], p=[0.2, 0.35, 0.15, 0.2, 0.1]))
    pads = []
    if rng.random() < 0.5:
        px, py, pr = rng.uniform(0.2, 0.8) * size, rng.uniform(0.2, 0.8) * size, rng.uniform(0.12, 0.2) * size
        _paint(img, cv.disc(px, py, pr), np.full(3, 0.78), 1.0)
        _paint(img, cv.disc(px, py, pr * 0.8) & ~cv.disc(px, py, pr * 0.7), np.array([0.9, 0.85, 0.2]), 1.0)
        for du in (-0.3, 0.3):  # the "H": two bars and a crossbar
            _paint(img, cv.rect(px + du * pr, py, np.pi / 2, -0.4 * pr, 0.4 * pr, 0.06 * pr), np.ones(3), 1.0)
        _paint(img, cv.rect(px, py, 0, -0.3 * pr, 0.3 * pr, 0.06 * pr), np.ones(3), 1.0)
        pads.append((px, py))
    for k in range(n_heli):
        length = rng.uniform(0.12, 0.28) * size
        if pads and k == 0 and rng.random() < 0.7:
            cx, cy = pads[0]
        else:
            cx, cy = rng.uniform(0.1, 0.9, 2) * size
        body, rotor, is_disc = _helicopter(cv, rng, cx, cy, length)
        silhouette = body | rotor
        _paint(img, _shift(silhouette, sdx, sdy) & ~silhouette, np.zeros(3), 0.5)
        colour = _BODIES[rng.integers(len(_BODIES))] + rng.normal(0, 0.03, 3)
        _paint(img, rotor, np.full(3, 0.12), 0.45 if is_disc else 0.9)
        _paint(img, body, colour, 1.0)
        mask |= silhouette
    return np.clip(img, 0.0, 1.0), mask.astype(np.int64)


class HelicopterTiles(Dataset):
    """`n` synthetic tiles of `size` px; item i is (image float32 (3, H, W) in [0, 1], mask int64 (H, W))."""

    num_classes = 2
    in_channels = 3

    def __init__(self, n: int, size: int = 64, seed: int = 0, offset: int = 0):
        if n < 1 or size < 16:
            raise ValueError(f"HelicopterTiles: need n >= 1 and size >= 16, got n={n}, size={size}")
        self.n, self.size, self.seed, self.offset = n, size, seed, offset
        # Each tile is its own scene: splits by scene are splits by tile here.
        self.scenes = [f"synthetic-{seed}-{offset + i}" for i in range(n)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not 0 <= i < self.n:
            raise IndexError(i)
        img, mask = _tile(self.seed, self.offset + i, self.size)
        return torch.from_numpy(img), torch.from_numpy(mask)


def make_helicopter_tiles(n: int, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """All `n` tiles at once: images (N, 3, H, W) float32 in [0, 1] and masks (N, H, W) int64."""
    ds = HelicopterTiles(n, size, seed)
    items = [ds[i] for i in range(n)]
    return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])
