"""The retrain-and-evaluate stage: train a segmentation network from scratch within a budget, score it on the
test split, and record metrics and precision-recall curves as `evaluation` events of the run.

It takes any nn.Module mapping (B, C, H, W) images to (B, K, H, W) logits: the discrete U-Net built from a
searched genotype and the plain U-Net baseline go through the same code, so their numbers compare.

`evaluation` event payload: {"stage": "retrain", "label", "split", "epochs", "steps", "train_seconds", "params",
"pixel": {"miou", "iou": [per class], "mdice", "dice", "accuracy", "confusion"},
"ap": {"0.5": mean AP over foreground classes, ...},
"curves": {"<class>": {"<iou threshold>": {"ap", "precision", "recall", "score", "num_pred", "num_gt"}}}}
Undefined values (a class absent from the test split) are null.
"""
from __future__ import annotations

import math
import time
from typing import Iterable

import torch
from torch import nn
from torch.utils.data import ConcatDataset

from nas_core.data.loader import make_loader
from nas_core.metrics.scores import curves as pr_curves, json_safe, pr_empty_reason
from nas_core.train.loop import evaluate, train_epoch
from nas_core.train.precision import resolve_precision


def _num_classes(model: nn.Module, datasets: dict) -> int:
    for split in ("test", "train_w"):
        k = getattr(datasets.get(split), "num_classes", None)
        if k:
            return int(k)
    heads = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return heads[-1].out_channels


def train_and_evaluate(model: nn.Module, datasets: dict, epochs: int, lr: float, events=None, *,
                       batch_size: int = 8, seed: int = 0, device: str | torch.device | None = None,
                       optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 3e-4,
                       grad_clip: float | None = 5.0, iou_thresholds: Iterable[float] = (0.25, 0.5, 0.75),
                       train_splits: Iterable[str] = ("train_w", "train_a"), eval_split: str = "test",
                       max_steps: int | None = None, time_budget_s: float | None = None, workers: int = 0,
                       num_classes: int | None = None, label: str = "model", curve_points: int = 101,
                       compute=None) -> dict:
    """Train `model` on the training splits (both search halves by default), evaluate on `eval_split`.

    The budget is `epochs` passes, cut short by `max_steps` batches or `time_budget_s` seconds in all.
    The learning rate follows a cosine from `lr` to 0 over the planned steps. `compute` (the experiment's
    `compute:` section) sets autocast, channels_last and compilation (nas_core.train.precision); None: float32. Returns the evaluation dict of
    `nas_core.train.loop.evaluate` plus "history", "steps", "train_seconds", "params" and "stopped_by".
    """
    if epochs < 1:
        raise ValueError("train_and_evaluate: epochs must be >= 1")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    splits = [datasets[s] for s in train_splits if s in datasets and len(datasets[s])]
    if not splits:
        raise ValueError(f"train_and_evaluate: no training data in splits {list(train_splits)}")
    if eval_split not in datasets or not len(datasets[eval_split]):
        raise ValueError(f"train_and_evaluate: the {eval_split!r} split is empty; prepare more scenes")
    train_set = splits[0] if len(splits) == 1 else ConcatDataset(splits)
    loader = make_loader(train_set, batch_size, shuffle=True, seed=seed, workers=workers,
                         drop_last=len(train_set) > batch_size, device=device)
    test_loader = make_loader(datasets[eval_split], batch_size, shuffle=False, seed=seed, workers=workers, device=device)
    k = num_classes or _num_classes(model, datasets)
    model = model.to(device)
    precision = resolve_precision(compute, device)
    # The same parameters, run at the configured precision; compiled for training only (eval-mode BatchNorm
    # would be a second compilation).
    net = precision.wrap(precision.prepare(model))
    train_net = precision.wrap(model, compiled=True)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    elif optimizer == "adam":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    else:
        raise ValueError(f"train_and_evaluate: optimizer {optimizer!r} is not one of sgd, adam")
    planned = epochs * len(loader) if max_steps is None else min(max_steps, epochs * len(loader))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, planned) / max(planned, 1))))
    start = time.monotonic()
    deadline = start + time_budget_s if time_budget_s else None
    history, steps, stopped_by = [], 0, "epochs"
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        left = None if max_steps is None else max_steps - steps
        r = train_epoch(train_net, loader, opt, device, grad_clip, sched, max_steps=left, deadline=deadline)
        steps += r["steps"]
        history.append({"epoch": epoch, "loss": r["loss"], "steps": r["steps"], "lr": opt.param_groups[0]["lr"]})
        if events is not None:
            events.append("metric", json_safe({"stage": "retrain", "label": label, "epoch": epoch,
                                             "train_loss": r["loss"], "lr": opt.param_groups[0]["lr"]}))
        if max_steps is not None and steps >= max_steps:
            stopped_by = "max_steps" if epoch < epochs - 1 else "epochs"
            break
        if deadline is not None and time.monotonic() >= deadline:
            stopped_by = "time_budget" if epoch < epochs - 1 else "epochs"
            break
    train_seconds = time.monotonic() - start
    result = evaluate(net, test_loader, k, device, iou_thresholds)
    result.update(history=history, steps=steps, train_seconds=train_seconds, stopped_by=stopped_by,
                  params=sum(p.numel() for p in model.parameters()))
    if events is not None:
        events.append("evaluation", json_safe({
            "stage": "retrain", "label": label, "split": eval_split, "epochs": len(history), "steps": steps,
            "train_seconds": train_seconds, "params": result["params"], "stopped_by": stopped_by,
            "pixel": {"miou": result["miou"], "iou": result["iou"], "mdice": result["mdice"], "dice": result["dice"],
                      "accuracy": result["accuracy"], "confusion": result["confusion"]},
            "ap": result["ap"], "curves": pr_curves(result["objects"], curve_points),
            "pr_empty_reason": pr_empty_reason(result["objects"]),
        }))
    return result
