"""The statistics of a study over seeds, pure (numpy and scipy, no database): the mean of each arm with a 95%
percentile-bootstrap interval, the difference of the means with its interval, the verdict in plain words, and
the rank correlation of each proxy (and of the parameter count and FLOPs, the baselines a proxy must beat)
against the trained IoU.

The bootstrap generator has a fixed seed, so the same IoUs give the same interval on every page load.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 10_000
LEVEL = 0.95
# Below this many seeds per arm a bootstrap interval is the one value repeated: say so instead of a verdict.
MIN_SEEDS = 2
NO_EVIDENCE = "no evidence that the search beats random at this budget"
# The proxies' baselines: a proxy that ranks candidates no better than their size is no proxy worth scoring.
SIZE_BASELINES = ("params", "flops")


def _resampled_means(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    picks = rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))
    return values[picks].mean(axis=1)


def _interval(samples: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def mean_interval(values: Sequence[float]) -> dict[str, Any]:
    """{"mean", "low", "high", "n"}: the mean and its 95% bootstrap interval (None bounds below MIN_SEEDS)."""
    x = np.asarray(values, dtype=float)
    if not len(x):
        return {"mean": None, "low": None, "high": None, "n": 0}
    if len(x) < MIN_SEEDS:
        return {"mean": float(x.mean()), "low": None, "high": None, "n": len(x)}
    lo, hi = _interval(_resampled_means(np.random.default_rng(BOOTSTRAP_SEED), x))
    return {"mean": float(x.mean()), "low": lo, "high": hi, "n": len(x)}


def difference_interval(searched: Sequence[float], random: Sequence[float]) -> dict[str, Any]:
    """mean(searched) - mean(random) and its 95% bootstrap interval, each arm resampled on its own (the arms may
    hold different counts: a repeat whose baseline failed still counts for the search)."""
    a, b = np.asarray(searched, dtype=float), np.asarray(random, dtype=float)
    if len(a) < MIN_SEEDS or len(b) < MIN_SEEDS:
        diff = float(a.mean() - b.mean()) if len(a) and len(b) else None
        return {"mean": diff, "low": None, "high": None}
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    lo, hi = _interval(_resampled_means(rng, a) - _resampled_means(rng, b))
    return {"mean": float(a.mean() - b.mean()), "low": lo, "high": hi}


def verdict(diff: dict[str, Any], n_searched: int, n_random: int, runs_searched: int | None = None,
            runs_random: int | None = None) -> str:
    """The difference in plain words: which arm is better and by how much, or that the interval holds 0.
    `runs_*`: the arms' runs with or without a test IoU yet, to tell "still running" from "too few seeds"."""
    if n_searched < MIN_SEEDS or n_random < MIN_SEEDS:
        if min(runs_searched or 0, runs_random or 0) >= MIN_SEEDS:
            return (f"waiting for test IoUs: {n_searched} of {runs_searched} searched and {n_random} of {runs_random} "
                    f"random runs have one; a verdict needs at least {MIN_SEEDS} of each")
        return (f"too few seeds to judge: {n_searched} searched and {n_random} random with a test IoU; a study needs "
                f"at least {MIN_SEEDS} of each (set repeats: {MIN_SEEDS} or more)")
    lo, hi, d = diff["low"], diff["high"], diff["mean"]
    if lo <= 0 <= hi:
        return f"{NO_EVIDENCE} (difference {d:+.3f} IoU, 95% interval {lo:+.3f} to {hi:+.3f})"
    better, by = ("the search beats random", d) if lo > 0 else ("random beats the search", -d)
    return f"{better} by {by:.3f} IoU (95% interval of the difference {lo:+.3f} to {hi:+.3f})"


def rank_correlations(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per proxy, then `params` and `flops`: Spearman and Kendall against the trained `iou`, and for a
    proxy whether its Spearman beats every defined size baseline (None when there is nothing to compare)."""
    from nas_core.proxies.correlation import correlations

    scored = []
    for r in results:
        scores = dict(r.get("proxies") or {})
        for name, key in (("params", "params_count"), ("flops", "flops")):
            if isinstance(r.get(key), (int, float)):
                scores[name] = float(r[key])
        scored.append({"iou": r.get("iou"), "proxies": scores})
    table = correlations(scored)
    # A size baseline that is undefined (every candidate the same size) sets no bar; with neither, nothing is judged.
    bar = [table[b]["spearman"] for b in SIZE_BASELINES if b in table and table[b]["spearman"] is not None]
    rows = []
    for name, c in table.items():
        if name in SIZE_BASELINES:
            continue
        beats = None
        if c["spearman"] is not None and bar:
            beats = c["spearman"] > max(bar)
        rows.append({"name": name, "baseline": False, "beats_size": beats, **c})
    rows += [{"name": b, "baseline": True, "beats_size": None, **table[b]} for b in SIZE_BASELINES if b in table]
    return rows


def finite(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
