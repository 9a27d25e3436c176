"""Data-parallel search throughput: 1 process against 2 ranks, for each engine (DDP, Horovod), on this machine.

Each configuration runs the real `nasforge search --stage search` on the synthetic helicopters; images/s is
(steps x global batch) over the search stage's wall time as the run's own events time it (start-up excluded).
Bytes per step are what each rank all-reduced (weight and architecture gradients, BatchNorm and Dice sums).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from nas_core.rundir import RunDir

OPS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3"]


def _config(engine: str, quick: bool, method: str, tiles: int | None = None) -> dict:
    return {
        "name": f"bench-{engine}", "seed": 0,
        "space": {"channels": 4 if quick else 8, "depth": 1 if quick else 2,
                  "cells": {t: {"ops": OPS, "nodes": 2 if quick else 4} for t in ("normal", "down", "up")}},
        "data": {"tile_size": 32 if quick else 64, "num_tiles": tiles or (16 if quick else 64), "batch_size": 8, "augment": False},
        "search": {"method": method, "epochs": 1, "warmup_epochs": 0},
        "retrain": {"enabled": False},
        "distributed": {"engine": engine, "sync_bn": True},
    }


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _measure(run_dir: Path, cfg: dict, ranks: int) -> dict:
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    nasforge = str(Path(sys.executable).with_name("nasforge"))
    argv = [nasforge, "search", "config.yaml", "--run-dir", ".", "--stage", "search", "--threads", "1"]
    engine = cfg["distributed"]["engine"]
    if ranks > 1 and engine == "ddp":
        argv = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
                "--master_port", str(_port()), "--no-python", *argv]
    elif ranks > 1:
        argv = [str(Path(sys.executable).with_name("horovodrun")), "-np", str(ranks), "--gloo",
                "--network-interface", "lo", "-p", str(_port()), *argv]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(argv, cwd=run_dir, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"{engine} x{ranks} failed:\n{out.stderr[-3000:]}")
    return timing(run_dir, cfg, ranks)


def timing(run_dir: Path, cfg: dict, ranks: int) -> dict:
    """Throughput of a finished search from its own events: steps over the search stage's wall time."""
    events = [json.loads(line) for line in RunDir(run_dir).events.read_text().splitlines()]
    start = next(e["time"] for e in events if e["kind"] == "status" and e["payload"].get("state") == "running")
    metric = next(e for e in events if e["kind"] == "metric")
    steps = metric["payload"]["step"]
    seconds = metric["time"] - start
    return {"ranks": ranks, "steps": steps, "seconds": round(seconds, 2), "step_s": _step_s(events, metric),
            "images_per_s": round(steps * cfg["data"]["batch_size"] / seconds, 2),
            "comm_bytes_per_step": metric["payload"].get("comm_bytes_per_step", 0)}


def unavailable(engine: str) -> str | None:
    """Why `engine` cannot run here, or None."""
    if engine == "horovod":
        try:
            import horovod.torch  # noqa: F401
        except ImportError:
            return "Horovod not built (make horovod)"
    return None


def one_and_two(tmp: Path, engine: str, quick: bool, method: str, tiles: int | None = None) -> tuple[dict, dict, dict]:
    """The config, then the search in 1 process and on 2 ranks of this machine (loopback), one after the other."""
    cfg = _config(engine, quick, method, tiles)
    one = _measure(tmp / f"{engine}-1", {**cfg, "distributed": {**cfg["distributed"], "engine": "none"}}, 1)
    return cfg, one, _measure(tmp / f"{engine}-2", cfg, 2)


def _step_s(events: list[dict], metric: dict) -> float | None:
    """Seconds per training step between the epoch's first and last progress events (each names its step): the
    first step's warm-up, the validation pass and the start-up left out. None with fewer than two."""
    marks = [(e["time"], e["payload"]["step"]) for e in events
             if e["kind"] == "progress" and e["time"] <= metric["time"] and e["payload"].get("step")]
    if len(marks) < 2 or marks[-1][1] == marks[0][1]:
        return None
    return round((marks[-1][0] - marks[0][0]) / (marks[-1][1] - marks[0][1]), 3)


def run(quick: bool = False, method: str = "darts", engines: str = "ddp,horovod") -> dict:
    results = {}
    with tempfile.TemporaryDirectory(prefix="nasforge-bench-dp-") as tmp:
        for engine in engines.split(","):
            if why := unavailable(engine):
                results[engine] = {"skipped": why}
                continue
            _, one, two = one_and_two(Path(tmp), engine, quick, method)
            results[engine] = {"one": one, "two": two, "speedup": round(two["images_per_s"] / one["images_per_s"], 2)}
    parts = [f"{e}: 2 ranks {r['two']['images_per_s']} img/s vs 1 process {r['one']['images_per_s']} img/s "
             f"({r['speedup']}x), {r['two']['comm_bytes_per_step'] / 1e6:.2f} MB all-reduced per rank per step"
             for e, r in results.items() if "two" in r]
    size = "tiny" if quick else "C=8, depth 2, 4 nodes, 64 px, global batch 8"
    return {"figure": f"{method} search, {size}, CPU, 1 thread per rank: " + "; ".join(parts), "results": results}
