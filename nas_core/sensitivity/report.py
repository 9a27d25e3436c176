"""From an experiment file and a checkpoint to sensitivity.json and a `sensitivity` event: what
`nasforge sensitivity` runs.

The experiment is the partial search being planned (space.macro plain-unet or resnext-unet): its space builds the
hand-designed network (its search_blocks are what this answers, so they are not used), its data gives the tiles:
both training halves for the fine-tunes, the validation split for every IoU. The checkpoint is the network's
trained weights, by default the space's init_from (the weights the partial search would start from).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import ConcatDataset

from nas_core.config import ConfigError, load_experiment
from nas_core.events import EventKind, EventLog
from nas_core.models.blocks import BACKBONES
from nas_core.rundir import RunDir, RunLock, write_json
from nas_core.sensitivity.analyse import sensitivity
from nas_core.sensitivity.finetune import SensitivityError


def _network(cfg, checkpoint: Path | None, config_path: Path):
    """The space's backbone with the checkpoint's weights, read (and confined to the platform's roots, when it set
    them) as a partial search reads space.init_from; errors name CHECKPOINT when it came from the command line."""
    from nas_core.space.cell import SpaceError
    from nas_core.space.partial import backbone

    if checkpoint is None and not cfg.space.init_from:
        raise SensitivityError(f"{config_path}: space.init_from is empty and no CHECKPOINT was given; name the "
                               "trained network's weights (a torch.save of its state_dict)")
    field = "space.init_from" if checkpoint is None else "CHECKPOINT"
    space = cfg.space if checkpoint is None else cfg.space.model_copy(update={"init_from": str(checkpoint)})
    try:
        model = backbone(space)
    except SpaceError as exc:
        prefix = "space.init_from: "
        text = str(exc)
        raise SensitivityError(f"{field}: {text.removeprefix(prefix)}" if text.startswith(prefix) else text) from None
    return model, Path(space.init_from)


def sensitivity_report(config_path: Path, checkpoint: Path | None = None, *, run_dir: Path | None = None,
                       out: Path | None = None, steps: int = 20, candidates: int = 3, lr: float = 0.05,
                       nodes: int = 2, seed: int | None = None, device: str | None = None,
                       progress: Callable[[str], None] | None = None) -> tuple[dict, Path]:
    """Measure, then write the JSON (RUN/sensitivity.json with a run directory, else `out`, default
    ./sensitivity.json) and, with a run directory, append one `sensitivity` event. Returns (result, file)."""
    from nas_core.data.datasets import build_datasets
    from nas_core.data.loader import make_loader

    try:
        cfg = load_experiment(config_path)
    except ConfigError as exc:
        raise SensitivityError(str(exc)) from None
    if cfg.space.macro not in BACKBONES:
        raise SensitivityError(f"{config_path}: space.macro is {cfg.space.macro!r}, a network of cells; sensitivity "
                               f"measures a hand-designed network: set space.macro to one of {', '.join(BACKBONES)}")
    model, checkpoint = _network(cfg, checkpoint, config_path)
    seed = cfg.seed if seed is None else seed
    ds = build_datasets(cfg.data, cfg.seed)
    if not len(ds["val"]):
        raise SensitivityError(f"{config_path}: the validation split is empty; raise data.num_tiles or "
                               "data.val_fraction")
    train = ConcatDataset([ds["train_w"], ds["train_a"]])
    bs = cfg.data.batch_size
    run = RunDir(run_dir) if run_dir is not None else None
    lock = RunLock(run.lock).acquire() if run is not None else None
    try:
        result = sensitivity(model, make_loader(train, bs, shuffle=True, seed=seed, drop_last=len(train) > bs),
                             make_loader(ds["val"], bs, shuffle=False, seed=seed), cfg.space.num_classes,
                             steps=steps, candidates=candidates, lr=lr, seed=seed, nodes=nodes,
                             device=device or ("cuda" if torch.cuda.is_available() else "cpu"), progress=progress)
        result = {"network": type(model).__name__, "macro": cfg.space.macro, "checkpoint": str(checkpoint),
                  "config": str(config_path), "val_tiles": len(ds["val"]), **result}
        path = run.sensitivity if run is not None else Path(out or "sensitivity.json")
        write_json(path, result)
        if run is not None:
            with EventLog(run.events) as log:
                log.append(EventKind.sensitivity, event_payload(result, path))
        return result, path
    finally:
        if lock is not None:
            lock.release()


def event_payload(result: dict, path: Path) -> dict:
    """The event's share of the result: the ranking and each block's three measures (the genotypes and every
    cell's IoU stay in the file)."""
    keys = ("name", "role", "rank", "score", "gain", "drop", "taylor_share", "ablation")
    return {"file": str(path), "network": result["network"], "first": result["first"], "order": result["order"],
            "reference_iou": result["reference_iou"], "tuned_reference_iou": result["tuned_reference_iou"],
            "steps": result["steps"], "candidates": result["candidates"],
            "blocks": [{k: b[k] for k in keys} for b in result["blocks"]]}
