"""The demo that `make run` seeds on first start: DARTS on synthetic helicopters, launched through the API, set
up so that a newcomer sees the alpha heatmap move within a minute of opening the page."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "darts-helicopters.yaml"

# On top of the example: alpha after every step (not only per epoch), so the heatmap moves from the first steps
# on. The example carries its own measured architecture step (nas_core.config.DEMO_EXPERIMENT).
DEMO_SEARCH = {"events_every_steps": 1}


def demo_config(example: Path = EXAMPLE) -> dict[str, Any]:
    cfg = yaml.safe_load(example.read_text())
    cfg["name"] = f"demo: {cfg['name']}"
    cfg["search"] = {**cfg.get("search", {}), **DEMO_SEARCH}
    # One baseline seed keeps a laptop CPU to two jobs while still showing IoU against random search.
    cfg["baseline"] = {**cfg.get("baseline", {}), "random": True, "seeds": 1}
    return cfg


def seed_demo(base_url: str, token: str, example: Path = EXAMPLE) -> dict:
    """Create the experiment from the example file and launch it (with one random baseline, to compare against).
    Returns {"experiment", "run", "baselines"}; when the demo already exists it is left alone (run None)."""
    cfg = demo_config(example)
    with httpx.Client(base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        r = c.get("/api/experiments", params={"q": cfg["name"], "limit": 50})
        r.raise_for_status()
        for exp in r.json()["items"]:
            if exp["name"] == cfg["name"]:
                return {"experiment": exp, "run": None, "baselines": []}
        r = c.post("/api/experiments", json=cfg)
        r.raise_for_status()
        exp = r.json()
        r = c.post(f"/api/experiments/{exp['id']}/runs", json={})
        r.raise_for_status()
        return {"experiment": exp, **r.json()}
