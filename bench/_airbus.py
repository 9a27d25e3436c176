"""Shared by the Airbus benchmarks: where the sample lies and the spec that prepares it."""
from __future__ import annotations

import os
from pathlib import Path

from nas_core.data.spec import PrepareSpec


def airbus_root() -> Path:
    env = os.environ.get("NASFORGE_SHARED_DATA")
    root = (Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data") / "airbus-aircraft"
    if not (root / "annotations.csv").exists():
        raise SystemExit(f"the Airbus sample is not at {root}; set NASFORGE_SHARED_DATA to the folder holding airbus-aircraft/")
    return root.resolve()


def airbus_spec(output: Path, tile_size: int, scale: float = 1.0, limit: int | None = None, workers: int = 1,
                max_empty_fraction: float = 1.0) -> PrepareSpec:
    root = airbus_root()
    return PrepareSpec.model_validate({
        "source": {"kind": "polygons", "images": str(root / "images"), "labels": str(root / "annotations.csv"),
                   "classes": {"Airplane": 1, "Truncated_airplane": 1}, "outside": "clip", "limit": limit},
        "output": str(output), "tile_size": tile_size, "scale": scale, "workers": workers,
        "max_empty_fraction": max_empty_fraction,
    })


def prepared_sample(scenes: int | None, scale: float, tile: int) -> Path:
    """The sample prepared once into bench/results/airbus-cache/ (reused while spec and sources match): `scenes`
    scenes (None or 0: all) scaled by `scale`, cut in `tile` px tiles, half the tiles without aircraft dropped
    (the sample is mostly apron and grass)."""
    from nas_core.data.prepare import prepare

    out = Path(__file__).resolve().parent / "results" / "airbus-cache" / f"s{scenes or 'all'}-x{scale}-t{tile}"
    return prepare(airbus_spec(out, tile, scale=scale, limit=scenes or None, max_empty_fraction=0.5), progress=False)
