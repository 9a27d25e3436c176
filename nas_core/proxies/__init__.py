"""Zero-cost proxies: scores of an untrained network from one batch, as the reference papers define them
(synflow, NASWOT, grad_norm, snip, jacob_cov), for ranking or pre-screening candidates before training.

Every proxy works on a deep copy, so the network given (its weights, BN statistics, mode) is left as it was.
"""
from __future__ import annotations

from typing import Any, Callable

from nas_core.proxies.gradient import grad_norm, snip
from nas_core.proxies.jacob_cov import jacob_cov
from nas_core.proxies.naswot import naswot
from nas_core.proxies.synflow import synflow

PROXIES: dict[str, Callable[..., float]] = {
    "synflow": synflow, "naswot": naswot, "grad_norm": grad_norm, "snip": snip, "jacob_cov": jacob_cov,
}


def score_proxies(model: Any, inputs: Any, targets: Any, names: list[str] | None = None) -> dict[str, float]:
    """{proxy name: score} for `model` on one batch (`targets` are class indices, per pixel or per image)."""
    names = list(PROXIES) if names is None else names
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise ValueError(f"proxies: unknown proxy {unknown[0]!r}; use any of {', '.join(PROXIES)}")
    return {n: float(PROXIES[n](model, inputs, targets)) for n in names}


__all__ = ["PROXIES", "score_proxies", "synflow", "naswot", "grad_norm", "snip", "jacob_cov"]
