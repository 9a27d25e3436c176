"""The real trial function: train one candidate network from scratch within the trial budget and score it
by validation IoU. Runs only in a trial's child process, where torch may load."""
from __future__ import annotations

from typing import Any


def train_candidate(genotype: dict[str, Any], budget: dict[str, Any], seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """`params["experiment"]` is the experiment (its space, data and retrain lr); `budget` is
    {"epochs": n} and optionally {"minutes": m} or {"max_steps": s}, whichever ends first.
    Zero-cost proxies (`params["proxies"]`: names, default all) are scored on the first training batch
    before any training, so a search can report how well each one predicted the trained IoU."""
    import math

    import torch

    from nas_core.config import parse_experiment
    from nas_core.data.datasets import build_datasets
    from nas_core.space import Genotype, build_network, count_parameters
    from nas_core.train.retrain import train_and_evaluate

    if "experiment" not in params:
        raise ValueError("objective_params.experiment: the real trainer needs the experiment (space, data)")
    exp = parse_experiment(params["experiment"], where="objective_params.experiment")
    torch.manual_seed(seed)
    model = build_network(Genotype.from_dict(genotype), exp.space, auxiliary=False)
    # The data split is the experiment's (its seed), not the trial's: every candidate sees the same scenes.
    datasets = build_datasets(exp.data, exp.seed)
    proxies = _proxies(model, datasets, exp, params.get("proxies"))
    flops = _flops(model, datasets)
    minutes = budget.get("minutes")
    result = train_and_evaluate(
        model, datasets, int(budget.get("epochs", 1)), exp.retrain.lr, batch_size=exp.data.batch_size, seed=seed,
        eval_split="val", max_steps=budget.get("max_steps"), time_budget_s=60 * minutes if minutes else None,
        workers=exp.data.workers, num_classes=exp.space.num_classes, iou_thresholds=exp.retrain.iou_thresholds,
    )
    return {"iou": result["miou"], "params_count": count_parameters(model), "flops": flops, "train_seconds": result["train_seconds"],
            "stopped_by": result["stopped_by"], "proxies": {k: v if math.isfinite(v) else None for k, v in proxies.items()}}


def _proxies(model: Any, datasets: dict, exp: Any, names: list[str] | None) -> dict[str, float]:
    if names == []:
        return {}
    import torch

    from nas_core.proxies import score_proxies

    train = datasets["train_w"]
    n = min(len(train), max(exp.data.batch_size, 2))  # NASWOT and jacob_cov need at least two inputs
    images, masks = zip(*(train[i] for i in range(n)))
    return score_proxies(model, torch.stack(images), torch.stack(masks).long(), names)


def _flops(model: Any, datasets: dict) -> int:
    """FLOPs of one forward pass on one training tile: with the parameter count, the size baseline a proxy must
    beat at ranking candidates (a proxy that only measures size is no better than counting)."""
    from nas_core.space import count_flops

    return count_flops(model, datasets["train_w"][0][0].unsqueeze(0))


def score_candidate(genotype: dict[str, Any], budget: dict[str, Any], seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """Pre-screening: the candidate's zero-cost proxies on the first training batch, without training."""
    import math

    import torch

    from nas_core.config import parse_experiment
    from nas_core.data.datasets import build_datasets
    from nas_core.space import Genotype, build_network, count_parameters

    if "experiment" not in params:
        raise ValueError("objective_params.experiment: scoring a candidate needs the experiment (space, data)")
    exp = parse_experiment(params["experiment"], where="objective_params.experiment")
    torch.manual_seed(seed)
    model = build_network(Genotype.from_dict(genotype), exp.space, auxiliary=False)
    datasets = build_datasets(exp.data, exp.seed)
    proxies = _proxies(model, datasets, exp, params.get("proxies"))
    return {"iou": None, "params_count": count_parameters(model), "flops": _flops(model, datasets),
            "proxies": {k: v if math.isfinite(v) else None for k, v in proxies.items()}}
