"""DARTS against its two collapse remedies (beta-DARTS, DARTS-), GAEA and random search at equal compute, over
seeds, on the Airbus aircraft sample at CPU size: test IoU (mean and 95% interval over seeds) and the share of
parameter-free ops in the decoded cells, the number collapse shows in.

Every continuous method is a real run of the four stages (search, decode, retrain, evaluate) on the same DARTS
supernet (GAEA too, so only the update differs); random search is a real `nasforge search` with `method: random`
whose trials may spend, in worker-seconds, what the seed's continuous searches spent on average in their search
stage. Each decoded cell is retrained and scored by the same protocol. Results are written after every run, so a
run cut short keeps what it finished.

    python -m bench robust_darts [--quick] [seeds=3] [scenes=12] [scale=0.125] [tile=64] [search_epochs=3]
        [retrain_epochs=6] [batch=8] [channels=4] [depth=1] [nodes=2] [methods=darts,betadarts,dartsminus,gaea]
        [random=1] [data=PREPARED_DIR]
"""
from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Two-sided 97.5% quantiles of Student's t by degrees of freedom: the 95% interval of a mean over few seeds.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def _experiment(method: str, seed: int, data: Path, p: dict, budget_s: float | None = None) -> dict:
    search: dict = {"method": method, "epochs": p["search_epochs"]}
    if method == "gaea":
        search["supernet"] = "darts"
    if method == "random":
        search.update(trials=100, trial_epochs=1, compute_budget_s=max(budget_s or 1.0, 1.0))
    space: dict = {"channels": p["channels"], "depth": p["depth"]}
    if p["nodes"] < 4:  # CPU size: a small cell, with the ops collapse is about (skip, pools) kept
        space["cells"] = {t: {"ops": ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                                      "dil_conv_3x3"], "nodes": p["nodes"]} for t in ("normal", "down", "up")}
    return {"name": f"robust-{method}-s{seed}", "seed": seed, "space": space,
            "data": {"source": "prepared", "path": str(data), "batch_size": p["batch"]},
            "search": search, "retrain": {"epochs": p["retrain_epochs"]}, "baseline": {"random": False}}


def _row(run_dir: Path, seconds: float, search_s: float) -> dict:
    from nas_core.search.reporting import param_free_share

    metrics = json.loads((run_dir / "metrics.json").read_text())
    share = param_free_share(json.loads((run_dir / "genotype.json").read_text()))
    return {"test_iou_aircraft": metrics["iou"][1] if len(metrics["iou"]) > 1 else None,
            "param_free_share": sum(share.values()) / len(share), "param_free_by_cell": share,
            "search_s": round(search_s, 1), "seconds": round(seconds, 1), "run_dir": str(run_dir)}


def _continuous(method: str, seed: int, data: Path, p: dict, out: Path) -> dict:
    from nas_core.config import parse_experiment
    from nas_core.rundir import RunDir
    from nas_core.search.reporting import EventSink
    from nas_core.search.stages import run_stages

    cfg = parse_experiment(_experiment(method, seed, data, p))
    run_dir = out / f"{method}-s{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with EventSink(RunDir(run_dir).events) as events:
        run_stages(cfg, run_dir, events, resume=True, only="search")
        search_s = time.time() - t0
        for stage in ("decode", "retrain", "evaluate"):
            run_stages(cfg, run_dir, events, resume=True, only=stage)
    return _row(run_dir, time.time() - t0, search_s)


def _random(seed: int, data: Path, p: dict, out: Path, budget_s: float) -> dict:
    import yaml
    from typer.testing import CliRunner

    from nas_core.cli import app

    run_dir = out / f"random-s{seed}"
    exp = out / f"random-s{seed}.yaml"
    exp.write_text(yaml.safe_dump(_experiment("random", seed, data, p, budget_s)))
    t0 = time.time()
    r = CliRunner().invoke(app, ["search", str(exp), "--run-dir", str(run_dir), "--threads", "1"])
    if r.exit_code != 0:
        raise RuntimeError(f"random search (seed {seed}) failed: {r.output[-2000:]}")
    return _row(run_dir, time.time() - t0, budget_s)


def interval(values: list[float]) -> dict:
    """Mean and the 95% t interval of the mean (None for one value)."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return {"n": n, "mean": mean, "low": None, "high": None}
    half = _T975.get(n - 1, 1.96) * statistics.stdev(values) / math.sqrt(n)
    return {"n": n, "mean": mean, "low": mean - half, "high": mean + half}


def _summary(rows: dict) -> dict:
    out = {}
    for method, per_seed in rows.items():
        iou = [r["test_iou_aircraft"] for r in per_seed.values() if r.get("test_iou_aircraft") is not None]
        free = [r["param_free_share"] for r in per_seed.values() if "param_free_share" in r]
        if iou:
            out[method] = {"test_iou": interval(iou), "param_free_share": interval(free)}
    return out


def _fmt(s: dict) -> str:
    i, f = s["test_iou"], s["param_free_share"]
    ci = f" [{i['low']:.3f}, {i['high']:.3f}]" if i["low"] is not None else ""
    return f"{i['mean']:.3f}{ci} (n={i['n']}, param-free {f['mean']:.0%})"


def run(quick: bool = False, **params) -> dict:
    p = {"seeds": 1 if quick else 3, "scenes": 4 if quick else 12, "scale": 0.125, "tile": 64,
         "search_epochs": 1 if quick else 3, "retrain_epochs": 1 if quick else 6, "batch": 8, "channels": 4,
         "depth": 1, "nodes": 2, "methods": "darts,betadarts,dartsminus,gaea", "random": 1, "data": None}
    for key, value in params.items():
        if key not in p:
            raise SystemExit(f"robust_darts: unknown parameter {key!r}; known: {', '.join(p)}")
        p[key] = value if key in ("methods", "data") else type(p[key])(value)
    import torch

    from bench._airbus import prepared_sample

    torch.set_num_threads(1)  # a shared CPU: one thread per run, as the measured rows say
    data = Path(p["data"]) if p["data"] else prepared_sample(int(p["scenes"]), float(p["scale"]), int(p["tile"]))
    out = RESULTS / f"robust_darts-{time.strftime('%Y%m%dT%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    methods = [m for m in str(p["methods"]).split(",") if m]
    rows: dict = {m: {} for m in methods + (["random"] if p["random"] else [])}

    def save():
        (out / "partial.json").write_text(json.dumps({"params": p, "rows": rows, "summary": _summary(rows)},
                                                     indent=2, default=str))

    for seed in range(p["seeds"]):
        for method in methods:
            rows[method][seed] = _continuous(method, seed, data, p, out)
            save()
        if p["random"]:
            spent = [rows[m][seed]["search_s"] for m in methods if seed in rows[m]]
            rows["random"][seed] = _random(seed, data, p, out, statistics.fmean(spent) if spent else 60.0)
            save()
    summary = _summary(rows)
    figure = ("test IoU (aircraft), mean [95% t interval] over seeds: "
              + "; ".join(f"{m} {_fmt(s)}" for m, s in summary.items())
              + f"; search {p['search_epochs']} ep, retrain {p['retrain_epochs']} ep, {p['scenes']} scenes at scale "
              f"{p['scale']} in {p['tile']} px tiles, C={p['channels']}, depth {p['depth']}, {p['nodes']} nodes")
    return {"figure": figure, "params": p, "data": str(data), "results": rows, "summary": summary, "out": str(out)}
