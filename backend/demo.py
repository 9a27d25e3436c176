"""The demo that `make run` seeds on first start: DARTS on synthetic helicopters, launched through the API."""
from __future__ import annotations

from pathlib import Path

import httpx
import yaml

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "darts-helicopters.yaml"


def seed_demo(base_url: str, token: str, example: Path = EXAMPLE) -> dict:
    """Create the experiment from the example file and launch it (with one random baseline, to compare against)."""
    cfg = yaml.safe_load(example.read_text())
    cfg["name"] = f"demo: {cfg['name']}"
    # One baseline seed keeps a laptop CPU to two jobs while still showing IoU against random search.
    cfg["baseline"] = {**cfg.get("baseline", {}), "random": True, "seeds": 1}
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        r = c.post("/api/experiments", json=cfg)
        r.raise_for_status()
        exp = r.json()
        r = c.post(f"/api/experiments/{exp['id']}/runs", json={})
        r.raise_for_status()
        return {"experiment": exp, **r.json()}
