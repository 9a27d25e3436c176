"""A search of each continuous method on the Airbus aircraft sample at a fixed budget, each decoded cell retrained
and scored on the test scenes, next to a plain U-Net trained with the same retraining budget.

Every method is a real `nasforge search` run (all four stages) in bench/results/search_airbus-<time>/<method>/;
results are written after each method, so a run cut short keeps what it finished.

    python -m bench search_airbus [--quick] [scenes=95] [scale=0.25] [tile=128] [search_epochs=10]
        [retrain_epochs=20] [batch=8] [channels=8] [depth=2] [nodes=4] [threads=0]
        [methods=darts,pcdarts,gaea] [data=PREPARED_DIR]

`data=` reuses a prepared dataset (e.g. one carried to a GPU machine); otherwise the sample is prepared from
../shared/data/airbus-aircraft (or $NASFORGE_SHARED_DATA) into bench/results/airbus-cache/, once.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _experiment(method: str, data: Path, p: dict) -> dict:
    search = {"method": method, "epochs": p["search_epochs"]}
    if method in ("pcdarts", "gaea"):
        search.update(pc_k=4, warmup_epochs=min(round(0.3 * p["search_epochs"]), p["search_epochs"] - 1))
    space = {"channels": p["channels"], "depth": p["depth"]}
    if p["nodes"] < 4:  # quick runs: a small cell (the DARTS cell has 4 nodes and 8 ops)
        space["cells"] = {t: {"ops": ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"], "nodes": p["nodes"]}
                          for t in ("normal", "down", "up")}
    return {"name": f"airbus-{method}", "seed": p["seed"], "space": space,
            "data": {"source": "prepared", "path": str(data), "batch_size": p["batch"], "workers": p["workers"]},
            "search": search, "retrain": {"epochs": p["retrain_epochs"], "lr": p["lr"]}}


def _scores(result: dict) -> dict:
    iou = result["iou"]
    return {"test_iou_aircraft": iou[1] if len(iou) > 1 else None, "test_miou": result["miou"],
            "test_ap50": result["ap"].get("0.5", result["ap"].get(0.5)), "params": result.get("params")}


def _searched(method: str, data: Path, p: dict, out: Path) -> dict:
    from nas_core.config import parse_experiment
    from nas_core.rundir import RunDir
    from nas_core.search.reporting import EventSink
    from nas_core.search.stages import run_stages

    cfg = parse_experiment(_experiment(method, data, p))
    run_dir = out / method
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with EventSink(RunDir(run_dir).events) as events:
        run_stages(cfg, run_dir, events, resume=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {**_scores(metrics), "seconds": time.time() - t0, "run_dir": str(run_dir),
            "genotype": json.loads((run_dir / "genotype.json").read_text())}


def _baseline(data: Path, p: dict) -> dict:
    import torch

    from nas_core.config import parse_experiment
    from nas_core.data.datasets import build_datasets
    from nas_core.models.plain_unet import PlainUNet
    from nas_core.train.retrain import train_and_evaluate

    cfg = parse_experiment(_experiment("darts", data, p))
    datasets = build_datasets(cfg.data, cfg.seed)
    torch.manual_seed(cfg.seed)
    model = PlainUNet(cfg.space.in_channels, cfg.space.num_classes, channels=p["channels"], depth=p["depth"])
    t0 = time.time()
    result = train_and_evaluate(model, datasets, p["retrain_epochs"], p["lr"], batch_size=p["batch"], seed=cfg.seed,
                                workers=p["workers"], label="plain-unet")
    result["ap"] = {str(k): v for k, v in result["ap"].items()}
    return {**_scores(result), "seconds": time.time() - t0}


def run(quick: bool = False, **params) -> dict:
    p = {"scenes": 4 if quick else 95, "scale": 0.125 if quick else 0.25, "tile": 64 if quick else 128,
         "search_epochs": 1 if quick else 10, "retrain_epochs": 1 if quick else 20, "batch": 4 if quick else 8,
         "channels": 4 if quick else 8, "depth": 1 if quick else 2, "lr": 0.025, "seed": 0, "workers": 0,
         "nodes": 2 if quick else 4, "threads": 0, "methods": "darts,pcdarts,gaea", "data": None}
    for key, value in params.items():
        if key not in p:
            raise SystemExit(f"search_airbus: unknown parameter {key!r}; known: {', '.join(p)}")
        p[key] = value if key in ("methods", "data") else type(p[key])(value)
    import torch

    from bench._airbus import prepared_sample

    # On a shared CPU, extra threads only contend (a run took 30x longer with two); 0 keeps torch's default.
    torch.set_num_threads(p["threads"] or (torch.get_num_threads() if torch.cuda.is_available() else 1))
    data = Path(p["data"]) if p["data"] else prepared_sample(int(p["scenes"]), float(p["scale"]), int(p["tile"]))
    out = RESULTS / f"search_airbus-{time.strftime('%Y%m%dT%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    rows: dict = {}

    def save():
        (out / "partial.json").write_text(json.dumps({"params": p, "rows": rows}, indent=2, default=str))

    rows["plain-unet"] = _baseline(data, p)
    save()
    for method in str(p["methods"]).split(","):
        rows[method] = _searched(method, data, p, out)
        save()
    fmt = lambda r: "n/a" if r["test_iou_aircraft"] is None else f"{r['test_iou_aircraft']:.3f}"
    figure = ("test IoU (aircraft) after retraining: " + ", ".join(f"{m} {fmt(r)}" for m, r in rows.items())
              + f"; search {p['search_epochs']} ep, retrain {p['retrain_epochs']} ep, {p['tile']} px tiles at scale "
              f"{p['scale']}, C={p['channels']}, depth {p['depth']}")
    return {"figure": figure, "params": p, "data": str(data), "results": rows, "out": str(out)}
