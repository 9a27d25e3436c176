"""Issue 18's table: is it better to search a part of a proven network than a whole network of cells?

Five rows on the Airbus aircraft sample, the same wall-clock budget per row (`budget_s`, the platform's own
measure of compute: the random baseline gets its search's seconds), run one after another for each seed so a
change in the machine's load falls on every row of that seed alike:

- plain-unet, resnext-unet: the hand-designed networks trained for the whole budget.
- darts-full: DARTS (first order, Adam on alpha at `arch_lr`, ten times the paper's so that one epoch moves it as
  ten would) on a U-Net of cells for `search_epochs`, then its decoded network retrained from scratch for
  the rest of the budget.
- darts-partial: DARTS on the top-ranked block of the ResNeXt U-Net only (the block `nasforge sensitivity` ranks
  first on the first seed's trained ResNeXt U-Net) for `partial_epochs` (a step costs a tenth of the full
  supernet's, so it can take more of them in its budget), then retrained, the whole network from scratch, for the rest.
- random-partial: random cells for that block, `random_trials` of them, each trained for an equal share of the
  partial DARTS search's measured seconds and scored on the validation split; the best retrained for the rest.

Each row is scored on the test scenes: aircraft IoU and AP at IoU 0.25 / 0.5 / 0.75, mean and spread over seeds.

    python -m bench partial_airbus [--quick] [seeds=3] [budget_s=240] [search_epochs=1] [partial_epochs=3] [arch_lr=3e-3] [scenes=95]
        [scale=0.125] [tile=64] [channels=8] [depth=2] [batch=8] [lr=0.05] [random_trials=3] [block=]
        [sensitivity_steps=20] [threads=1]

`block=NAME` skips the sensitivity step and searches that block. The sensitivity analysis runs once, outside
every row's budget (a user runs it once, on a network they have trained already).
"""
from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ROWS = ("plain-unet", "resnext-unet", "darts-full", "darts-partial", "random-partial")
_OPS = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3"]
_CELL = {"ops": _OPS, "nodes": 2}


def _params(quick: bool, params: dict) -> dict:
    p = {"seeds": 2 if quick else 3, "budget_s": 12.0 if quick else 240.0, "search_epochs": 1, "partial_epochs": 1 if quick else 3, "arch_lr": 3e-3, "scenes": 4 if quick else 95,
         "scale": 0.125, "tile": 64, "channels": 4 if quick else 8, "depth": 2, "batch": 8, "lr": 0.05,
         "random_trials": 2 if quick else 3, "block": "", "sensitivity_steps": 3 if quick else 20, "threads": 1,
         "cardinality": 4 if not quick else 2, "bottleneck_width": 2}
    for key, value in params.items():
        if key not in p:
            raise SystemExit(f"partial_airbus: unknown parameter {key!r}; known: {', '.join(p)}")
        p[key] = value if isinstance(p[key], str) else type(p[key])(value)
    return p


def _spaces(p: dict, block: str | None):
    from nas_core.models.blocks import BACKBONES
    from nas_core.space.config import SpaceConfig

    backbone = {"cardinality": p["cardinality"], "bottleneck_width": p["bottleneck_width"]}
    full = SpaceConfig.model_validate({"channels": p["channels"], "depth": p["depth"],
                                       "cells": {t: _CELL for t in ("normal", "down", "up")}})
    if block is None:
        return full, None, backbone
    specs = {s.name: s for s in BACKBONES["resnext-unet"].blocks(3, 2, p["channels"], p["depth"])}
    partial = SpaceConfig.model_validate({"macro": "resnext-unet", "channels": p["channels"], "depth": p["depth"],
                                          "backbone": backbone, "search_blocks": [block],
                                          "cells": {specs[block].role: _CELL}})
    return full, partial, backbone


def _scores(r: dict, seconds: float, **extra) -> dict:
    ap = {str(k): v for k, v in r["ap"].items()}
    return {"test_iou_aircraft": r["iou"][1], "test_miou": r["miou"], "ap25": ap.get("0.25"), "ap50": ap.get("0.5"),
            "ap75": ap.get("0.75"), "params": r["params"], "train_steps": r["steps"], "seconds": round(seconds, 1),
            **extra}


def _train(model, ds, p: dict, seed: int, budget: float, label: str, split: str = "test") -> dict:
    from nas_core.train.retrain import train_and_evaluate

    return train_and_evaluate(model, ds, epochs=10000, lr=p["lr"], batch_size=p["batch"], seed=seed,
                              time_budget_s=max(1.0, budget), eval_split=split, label=label)


def _search(space, data: Path, p: dict, seed: int, run_dir: Path, epochs: int):
    """DARTS (first order) for `epochs` in a real run directory; the decoded genotype and the stage's seconds."""
    from nas_core.config import parse_experiment
    from nas_core.rundir import RunDir
    from nas_core.search.reporting import EventSink
    from nas_core.search.stages import run_stages
    from nas_core.space.genotypes import load_genotype

    cfg = parse_experiment({"name": run_dir.name, "seed": seed, "space": space.model_dump(exclude_defaults=True),
                            "data": {"source": "prepared", "path": str(data), "batch_size": p["batch"]},
                            "search": {"method": "darts", "epochs": epochs, "arch_lr": p["arch_lr"]}})
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with EventSink(RunDir(run_dir).events) as events:
        run_stages(cfg, run_dir, events, resume=True, only="search")
        seconds = time.monotonic() - t0
        run_stages(cfg, run_dir, events, resume=True, only="decode")
    return load_genotype(RunDir(run_dir).genotype), seconds


def _searched_row(space, data: Path, ds, p: dict, seed: int, out: Path, name: str, epochs: int) -> tuple[dict, float]:
    import torch

    from nas_core.space.network import build_network

    genotype, search_s = _search(space, data, p, seed, out / f"{name}-s{seed}", epochs)
    torch.manual_seed(seed)
    r = _train(build_network(genotype, space), ds, p, seed, p["budget_s"] - search_s, name)
    return _scores(r, search_s + r["train_seconds"], search_seconds=round(search_s, 1),
                   genotype=genotype.to_dict()), search_s


def _random_row(space, ds, p: dict, seed: int, search_s: float) -> dict:
    """Random cells for the marked block, each trained search_s / random_trials seconds, best by validation IoU."""
    import torch

    from nas_core.space.network import build_network
    from nas_core.space.sample import sample_genotype

    rng, share, tried = random.Random(seed), search_s / p["random_trials"], []
    t0 = time.monotonic()
    for k in range(p["random_trials"]):
        genotype = sample_genotype(space, rng)
        torch.manual_seed(seed * 1000 + k)
        r = _train(build_network(genotype, space), ds, p, seed, share, f"random-{k}", split="val")
        tried.append((r["iou"][1] if r["iou"][1] is not None else -1.0, genotype))
    spent = time.monotonic() - t0
    best_val, best = max(tried, key=lambda t: t[0])
    torch.manual_seed(seed)
    r = _train(build_network(best, space), ds, p, seed, p["budget_s"] - spent, "random-partial")
    return _scores(r, spent + r["train_seconds"], search_seconds=round(spent, 1), best_val_iou=best_val,
                   trials=len(tried), genotype=best.to_dict())


def _hand_designed(name: str, backbone: dict, ds, p: dict, seed: int):
    import torch

    from nas_core.models.hand_designed import build

    torch.manual_seed(seed)
    model = build(name, 3, 2, p["channels"], p["depth"], backbone if name == "resnext-unet" else {})
    r = _train(model, ds, p, seed, p["budget_s"], name)
    return _scores(r, r["train_seconds"]), model


def _rank_blocks(model, ds, p: dict, seed: int) -> dict:
    from torch.utils.data import ConcatDataset

    from nas_core.data.loader import make_loader
    from nas_core.sensitivity.analyse import sensitivity

    train = ConcatDataset([ds["train_w"], ds["train_a"]])
    t0 = time.monotonic()
    result = sensitivity(model, make_loader(train, p["batch"], shuffle=True, seed=seed, drop_last=True),
                         make_loader(ds["val"], p["batch"], shuffle=False, seed=seed), 2,
                         steps=p["sensitivity_steps"], candidates=3, lr=p["lr"], seed=seed, device="cpu")
    return {"first": result["first"], "seconds": round(time.monotonic() - t0, 1),
            "blocks": [{k: b[k] for k in ("name", "rank", "score", "drop", "gain")} for b in result["blocks"]]}


def _spread(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def table(rows: dict[str, list[dict]]) -> str:
    lines = ["| row | seeds | test aircraft IoU | AP@0.25 | AP@0.5 | AP@0.75 | params | train steps | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ROWS:
        got = rows.get(name) or []
        if not got:
            continue
        mean = lambda k: statistics.mean(r[k] for r in got)
        lines.append(f"| {name} | {len(got)} | {_spread([r['test_iou_aircraft'] for r in got])} | "
                     f"{_spread([r['ap25'] for r in got])} | {_spread([r['ap50'] for r in got])} | "
                     f"{_spread([r['ap75'] for r in got])} | {got[0]['params']} | {mean('train_steps'):.0f} | "
                     f"{mean('seconds'):.0f} |")
    return "\n".join(lines)


def run(quick: bool = False, **params) -> dict:
    import torch

    from bench._airbus import prepared_sample
    from nas_core.data import DataConfig, build_datasets

    p = _params(quick, params)
    torch.set_num_threads(p["threads"])
    data = prepared_sample(p["scenes"], p["scale"], p["tile"])
    out = RESULTS / f"partial_airbus-{time.strftime('%Y%m%dT%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {name: [] for name in ROWS}
    ranking, block = None, p["block"] or None

    def save():
        (out / "partial_airbus.json").write_text(json.dumps(
            {"params": p, "data": str(data), "ranking": ranking, "block": block, "rows": rows}, indent=2, default=str))

    full, partial, backbone = _spaces(p, block)
    for seed in range(p["seeds"]):
        ds = build_datasets(DataConfig(source="prepared", path=str(data), batch_size=p["batch"]), seed)
        row, model = _hand_designed("resnext-unet", backbone, ds, p, seed)
        rows["resnext-unet"].append(row)
        if block is None:
            ranking = _rank_blocks(model, ds, p, seed)
            block = ranking["first"]
            full, partial, backbone = _spaces(p, block)
        rows["plain-unet"].append(_hand_designed("plain-unet", {}, ds, p, seed)[0])
        save()
        rows["darts-full"].append(_searched_row(full, data, ds, p, seed, out, "darts-full", p["search_epochs"])[0])
        save()
        row, partial_s = _searched_row(partial, data, ds, p, seed, out, "darts-partial", p["partial_epochs"])
        rows["darts-partial"].append(row)
        rows["random-partial"].append(_random_row(partial, ds, p, seed, partial_s))
        save()
        print(f"seed {seed} done\n{table(rows)}", flush=True)
    best = max(ROWS, key=lambda n: statistics.mean(r["test_iou_aircraft"] or 0 for r in rows[n]))
    figure = (f"test aircraft IoU, mean ± sd over {p['seeds']} seeds, {p['budget_s']:.0f} s per row: "
              + ", ".join(f"{n} {_spread([r['test_iou_aircraft'] for r in rows[n]])}" for n in ROWS)
              + f"; best: {best}; partial search of {block} (ranked first by nasforge sensitivity)")
    return {"figure": figure, "table": table(rows), "params": p, "data": str(data), "block": block,
            "ranking": ranking, "rows": rows, "out": str(out)}
