"""Whole-scene prediction with a searched network: megapixels per second on a 2560 px Airbus scene, and peak
memory (RSS) on a scene of 4x its area (the scene tiled 2 x 2 into a GeoTIFF with a CRS), against the same on the
2560 px scene: windowed reads and writes keep memory flat while the scene grows.

    python -m bench predict [--quick] [run=RUN_DIR] [threads=1] [channels=8] [depth=2] [tile=128] [batch=8]

Without `run=`, a real search makes the network first (DARTS, the small cell of the quick Airbus benchmark:
none / max pool / skip / sep conv 3x3, 2 nodes; 1 search and 1 retrain epoch on synthetic tiles: throughput
does not depend on what the weights learnt). Each prediction runs in its own process, so its peak RSS is its own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SHARED = Path(os.environ.get("NASFORGE_SHARED_DATA", ROOT.parent / "shared" / "data"))

# The child: load, predict one scene, report wall time and peak RSS. VmHWM, not ru_maxrss: Linux carries
# ru_maxrss across exec, so a child would report its parent's peak (the search's) instead of its own.
_CHILD = """
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[4]))
from nas_core.inference import load_model, predict_scene
p = load_model(sys.argv[1])
t = time.perf_counter()
out = predict_scene(p, sys.argv[2], sys.argv[3], batch_size=int(sys.argv[5]), progress=False)
wall = time.perf_counter() - t
n = len(json.load(open(out["polygons"]))["features"])
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": wall, "cpu_seconds": time.process_time(), "objects": n,
                  "peak_rss_mib": int(hwm.split()[1]) / 1024}))
"""


def _searched_run(out: Path, p: dict) -> Path:
    from nas_core.config import parse_experiment
    from nas_core.search.reporting import EventSink
    from nas_core.search.stages import run_stages
    from nas_core.rundir import RunDir

    ops = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]
    cfg = parse_experiment({
        "name": "bench-predict", "seed": 0,
        "space": {"channels": p["channels"], "depth": p["depth"],
                  "cells": {t: {"ops": ops, "nodes": 2} for t in ("normal", "down", "up")}},
        "data": {"tile_size": p["tile"], "num_tiles": p["tiles"], "batch_size": p["batch"]},
        "search": {"method": "darts", "epochs": 1}, "retrain": {"epochs": 1}})
    out.mkdir(parents=True, exist_ok=True)
    with EventSink(RunDir(out).events) as events:
        run_stages(cfg, out, events, resume=False, device="cpu")
    return out


def _big_scene(scene: Path, folder: Path) -> Path:
    """The scene tiled 2 x 2 (4x its area) as a GeoTIFF with a CRS, written quadrant by quadrant."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    with rasterio.open(scene) as src:
        img, h, w, n = src.read(), src.height, src.width, src.count
    path = folder / "airbus-2x2.tif"
    with rasterio.open(path, "w", driver="GTiff", width=2 * w, height=2 * h, count=n, dtype=img.dtype,
                       crs="EPSG:32631", transform=from_origin(500000.0, 4600000.0, 0.5, 0.5), tiled=True) as dst:
        for r in range(2):
            for c in range(2):
                dst.write(img, window=Window(c * w, r * h, w, h))
    return path


def _predict(run: Path, scene: Path, out: Path, threads: int, batch: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(run), str(scene), str(out), str(threads), str(batch)],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if proc.returncode:
        raise RuntimeError(f"prediction of {scene} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool = False, **params) -> dict:
    p = {"threads": 1, "channels": 8, "depth": 2, "tile": 128, "batch": 8, "tiles": 16, "run": None}
    p.update({k: (v if k == "run" else int(v)) for k, v in params.items()})
    if quick:
        p.update(channels=4, depth=1, tile=64, tiles=8)
    scenes = sorted((SHARED / "airbus-aircraft" / "images").glob("*.jpg"))
    if not scenes:
        raise SystemExit(f"no Airbus scenes under {SHARED / 'airbus-aircraft' / 'images'} (set NASFORGE_SHARED_DATA)")
    scene = scenes[0]
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        # The searched run is kept (bench/results/) so a rerun can pass it as run= and skip the search.
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        run_dir = Path(p["run"]) if p["run"] else _searched_run(RESULTS / f"predict-run-{stamp}", p)
        made_s = time.perf_counter() - t
        from nas_core.inference import load_model

        predictor = load_model(run_dir)
        params_count = sum(x.numel() for x in predictor.module.parameters())
        genotype = predictor.card["genotype"]
        small = _predict(run_dir, scene, tmp / "out-small", p["threads"], p["batch"])
        big_scene = _big_scene(scene, tmp)
        big = {} if quick else _predict(run_dir, big_scene, tmp / "out-big", p["threads"], p["batch"])
    mp = 2560 * 2560 / 1e6
    small["megapixels_per_s"] = mp / small["seconds"]
    k = predictor.num_classes
    whole_map_mib = k * 4 * (2 * 2560) ** 2 / 2 ** 20  # what holding the 4x scene's probabilities at once would take
    figure = (f"{small['megapixels_per_s']:.2f} MP/s on a 2560 px Airbus scene ({small['seconds']:.1f} s, "
              f"tile {predictor.tile_size}, overlap {predictor.tile_size // 4}); searched DARTS network "
              f"({params_count} params, C={p['channels']}, depth {p['depth']}), CPU, {p['threads']} thread(s)")
    if big:
        big["megapixels_per_s"] = 4 * mp / big["seconds"]
        figure += (f"; peak RSS {big['peak_rss_mib']:.0f} MiB on the 5120 px (4x area) GeoTIFF vs "
                   f"{small['peak_rss_mib']:.0f} MiB on the 2560 px scene (its whole probability map alone: "
                   f"{whole_map_mib:.0f} MiB)")
    try:
        load = os.getloadavg()[0]
        figure += f"; load avg {load:.1f}"
    except OSError:
        pass
    return {"figure": figure, "params": p, "run_dir": str(run_dir), "scene": scene.name, "small": small, "big": big,
            "network_params": params_count, "genotype": genotype, "search_seconds": made_s}
