"""Seeded splits by scene: no scene has tiles on both sides of a split, so neighbouring tiles never leak."""
from __future__ import annotations

import numpy as np

SPLITS = ("train_w", "train_a", "val", "test")


def _count(fraction: float, n: int) -> int:
    return 0 if fraction <= 0 else max(1, int(round(fraction * n)))


def split_by_scene(scenes: list[str], seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15,
                   arch_fraction: float = 0.5) -> dict[str, list[int]]:
    """Item indices per split, given the scene of each item; train is cut into a weight and an architecture half."""
    unique = sorted(set(scenes))
    n = len(unique)
    n_test, n_val = _count(test_fraction, n), _count(val_fraction, n)
    n_train = n - n_test - n_val
    if n_train < 2:
        raise ValueError(
            f"data: {n} scene(s) cannot be split by scene into train (weight and architecture halves), val and test; "
            f"need at least {n_test + n_val + 2}. Prepare more scenes, or lower data.val_fraction / data.test_fraction"
        )
    order = [unique[i] for i in np.random.default_rng(seed).permutation(n)]
    n_a = min(max(1, int(round(arch_fraction * n_train))), n_train - 1)
    owner = {}
    for split, names in (("test", order[:n_test]), ("val", order[n_test:n_test + n_val]),
                         ("train_a", order[n_test + n_val:n_test + n_val + n_a]),
                         ("train_w", order[n_test + n_val + n_a:])):
        for s in names:
            owner[s] = split
    out: dict[str, list[int]] = {k: [] for k in SPLITS}
    for i, s in enumerate(scenes):
        out[owner[s]].append(i)
    return out
