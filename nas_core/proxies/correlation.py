"""How well each proxy ranks candidates as training does: Spearman and Kendall rank correlation between a
proxy's scores and the trained validation IoU, over the candidates of a finished search."""
from __future__ import annotations

import math
from typing import Any, Iterable


def correlations(results: Iterable[dict[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """{proxy: {"spearman", "kendall", "n"}} from trial results with `iou` and `proxies`; candidates without
    an IoU or a finite score are left out; fewer than 3 pairs (or constant values) give None."""
    from scipy.stats import kendalltau, spearmanr

    pairs: dict[str, list[tuple[float, float]]] = {}
    for r in results:
        if r.get("iou") is None:
            continue
        for name, score in (r.get("proxies") or {}).items():
            if score is not None and math.isfinite(score):
                pairs.setdefault(name, []).append((score, r["iou"]))
    out = {}
    for name, xy in sorted(pairs.items()):
        xs, ys = [p[0] for p in xy], [p[1] for p in xy]
        rho = tau = None
        if len(xy) >= 3 and len(set(xs)) > 1 and len(set(ys)) > 1:
            rho, tau = float(spearmanr(xs, ys)[0]), float(kendalltau(xs, ys)[0])
        out[name] = {"spearman": rho, "kendall": tau, "n": len(xy)}
    return out
