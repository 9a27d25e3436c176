"""Zero-cost proxies: scores of an untrained network from one batch, as the reference papers define them
(synflow, NASWOT, grad_norm, snip, jacob_cov), for ranking or pre-screening candidates before training.

Every proxy works on a deep copy, so the network given (its weights, BN statistics, mode) is left as it was.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"synflow": "synflow", "naswot": "naswot", "grad_norm": "gradient", "snip": "gradient",
            "jacob_cov": "jacob_cov", "correlations": "correlation"}
NAMES = ("synflow", "naswot", "grad_norm", "snip", "jacob_cov")


def __getattr__(name: str) -> Any:
    # Lazy, so that the correlation report (scipy only) does not load torch in the orchestrator.
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"nas_core.proxies.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    if name == "PROXIES":
        value = {n: __getattr__(n) for n in NAMES}
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nas_core.proxies' has no attribute {name!r}")


def score_proxies(model: Any, inputs: Any, targets: Any, names: list[str] | None = None) -> dict[str, float]:
    """{proxy name: score} for `model` on one batch (`targets` are class indices, per pixel or per image)."""
    names = list(NAMES) if names is None else names
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"proxies: unknown proxy {unknown[0]!r}; use any of {', '.join(NAMES)}")
    out: dict[str, float] = {}
    if "grad_norm" in names and "snip" in names:
        from nas_core.proxies.gradient import gradient_scores

        out.update(gradient_scores(model, inputs, targets))  # one backward pass for both
    for n in names:
        if n not in out:
            out[n] = float(__getattr__(n)(model, inputs, targets))
    return {n: out[n] for n in names}


__all__ = ["NAMES", "PROXIES", "score_proxies", "correlations", *NAMES]
