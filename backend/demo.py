"""The demo `make run` seeds on first start: a small DARTS search on the synthetic helicopters, created and
launched through the API, sized so that a newcomer sees the alpha heatmap move within a minute."""
from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)

DEMO_NAME = "demo: DARTS on synthetic helicopters"

# Small enough for a laptop CPU: alpha after every step keeps the heatmap moving from the first steps on,
# and 30 epochs keep it moving for a while. No random baseline: its runs would share the CPU with the demo.
DEMO_CONFIG: dict[str, Any] = {
    "name": DEMO_NAME,
    "description": "Seeded by `make run`: a small DARTS search on generated helicopter tiles. "
                   "Open the run to watch alpha move; clone it to try your own settings.",
    "space": {"macro": "unet", "depth": 1, "channels": 4,
              "cells": {t: {"nodes": 3} for t in ("normal", "down", "up")}},
    "data": {"source": "synthetic", "tile_size": 32, "num_tiles": 24, "batch_size": 4},
    # arch_lr ten times DARTS's 3e-4, so alpha visibly leaves uniform within the first epochs.
    "search": {"method": "darts", "epochs": 30, "events_every_steps": 1, "arch_lr": 0.003},
    "retrain": {"epochs": 3},
    "baseline": {"random": False},
    "launcher": {"kind": "local", "processes": 1},
}


def seed_demo(base_url: str, token: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """Create and launch the demo experiment unless one by that name exists; returns {"experiment", "run"}
    (run is None when the demo was already there). Raises RuntimeError naming the failing request."""
    with httpx.Client(base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=timeout) as http:
        def call(method: str, path: str, **kw) -> Any:
            try:
                r = http.request(method, path, **kw)
            except httpx.HTTPError as exc:
                raise RuntimeError(f"demo: {method} {base_url}{path} failed: {exc}") from None
            if r.status_code >= 400:
                raise RuntimeError(f"demo: {method} {path} answered HTTP {r.status_code}: {r.text[:500]}")
            return r.json()

        found = call("GET", "/api/experiments", params={"q": DEMO_NAME, "limit": 50})
        for exp in found["items"]:
            if exp["name"] == DEMO_NAME:
                log.info("demo experiment %s already exists", exp["id"])
                return {"experiment": exp, "run": None}
        exp = call("POST", "/api/experiments", json=DEMO_CONFIG)
        launched = call("POST", f"/api/experiments/{exp['id']}/runs", json={})
        log.info("demo experiment %s launched as run %s", exp["id"], launched["run"]["id"])
        return {"experiment": exp, "run": launched["run"]}
