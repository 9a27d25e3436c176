"""Preparation throughput on the Airbus aircraft sample: rasterise the polygons, cut 512 px tiles, write, hash.

`python -m bench prepare_airbus [tile_size=512] [workers=1,2]`; --quick uses 3 scenes. Each worker count runs
from scratch into a temporary directory (deleted afterwards), so the file cache is the only thing shared.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from bench._airbus import airbus_spec
from nas_core.data.manifest import load_manifest
from nas_core.data.prepare import prepare


def run(quick: bool = False, tile_size: str = "512", workers: str = "1,2", **_) -> dict:
    limit = 3 if quick else None
    runs = []
    for w in [int(x) for x in str(workers).split(",")]:
        tmp = Path(tempfile.mkdtemp(prefix="nasforge-bench-"))
        try:
            spec = airbus_spec(tmp / "airbus", int(tile_size), limit=limit, workers=w)
            t0 = time.perf_counter()
            out = prepare(spec, progress=False)
            seconds = time.perf_counter() - t0
            m = load_manifest(out)
            size_mb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        c = m["counts"]
        runs.append({"workers": w, "seconds": round(seconds, 2), "tiles": c["tiles"], "scenes": c["scenes"],
                     "tiles_per_s": round(c["tiles"] / seconds, 1), "tiles_with_objects": c["tiles_with_objects"],
                     "foreground_share": m["class_balance"][1], "polygons": m["source"]["polygons"],
                     "polygons_dropped": m["source"]["polygons_dropped"], "size_mb": round(size_mb, 1)})
    parts = ", ".join(f"{r['tiles_per_s']} tiles/s with {r['workers']} worker(s) ({r['seconds']} s)" for r in runs)
    r0 = runs[0]
    return {
        "figure": f"Airbus sample, {r0['scenes']} scenes -> {r0['tiles']} tiles of {tile_size} px "
                  f"(polygons rasterised, PNG + sha256): {parts}",
        "runs": runs,
    }
