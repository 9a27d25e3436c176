"""Rank correlation of proxies with trained IoU, from a search's results."""
from __future__ import annotations

import pytest

from nas_core.proxies.correlation import correlations


def test_spearman_and_kendall_by_hand_skipping_failed_and_non_finite():
    results = [
        {"iou": 0.1, "proxies": {"p": 1.0}},
        {"iou": 0.3, "proxies": {"p": 2.0}},
        {"iou": 0.2, "proxies": {"p": 3.0}},
        {"iou": None, "proxies": {"p": 9.0}},  # failed trial: no IoU to compare with
        {"iou": 0.4, "proxies": {"p": float("nan")}},
    ]
    # Ranks of p: 1 2 3, of IoU: 1 3 2 -> d^2 = 0 + 1 + 1, rho = 1 - 6*2/(3*8) = 0.5;
    # pairs: (1,2) concordant, (1,3) concordant, (2,3) discordant -> tau = (2 - 1)/3.
    out = correlations(results)["p"]
    assert out["n"] == 3
    assert out["spearman"] == pytest.approx(0.5) and out["kendall"] == pytest.approx(1 / 3)


def test_too_few_or_constant_values_give_none():
    assert correlations([{"iou": 0.1, "proxies": {"p": 1.0}}, {"iou": 0.2, "proxies": {"p": 2.0}}])["p"]["spearman"] is None
    const = [{"iou": 0.1 * i, "proxies": {"p": 1.0}} for i in range(4)]
    assert correlations(const)["p"] == {"spearman": None, "kendall": None, "n": 4}
