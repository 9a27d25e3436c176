"""From a trained hand-designed network and its data to sensitivity.json and a `sensitivity` event: what
`nasforge sensitivity` runs, in either of its two forms.

- A finished hand-designed baseline run (`--run-dir RUN` alone): RUN/config.yaml's `run.network` is the network,
  RUN/checkpoints/retrain.pt its weights, the run's experiment its data; the result goes into the run directory.
- An experiment file (`CHECKPOINT --config EXP`): the partial search being planned (space.macro plain-unet or
  resnext-unet); its space names the network (its search_blocks are what this answers, so they are not used), the
  checkpoint is the trained weights, by default the space's init_from.
Either way the data gives the tiles: both training halves for the fine-tunes, the validation split for every IoU.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import ConcatDataset

from nas_core.config import ConfigError, ExperimentConfig, load_experiment, parse_experiment
from nas_core.events import EventKind, EventLog
from nas_core.models.blocks import BACKBONES
from nas_core.models.hand_designed import NetworkConfig
from nas_core.rundir import RunDir, RunLock, read_config, write_json
from nas_core.sensitivity.analyse import sensitivity
from nas_core.sensitivity.finetune import SensitivityError


@dataclass(frozen=True)
class Subject:
    """What is measured: the network as data, its weights, the experiment whose data and seed it was trained
    with, and how an error names the weights (CHECKPOINT, space.init_from or the run's retrain.pt)."""

    network: NetworkConfig
    checkpoint: Path
    cfg: ExperimentConfig
    field: str
    source: str  # the experiment file or RUN/config.yaml, for the JSON and error messages


def from_experiment(config_path: Path, checkpoint: Path | None = None) -> Subject:
    """The partial search's experiment: space.macro a hand-designed network, CHECKPOINT or space.init_from."""
    try:
        cfg = load_experiment(config_path)
    except ConfigError as exc:
        raise SensitivityError(str(exc)) from None
    if cfg.space.macro not in BACKBONES:
        raise SensitivityError(f"{config_path}: space.macro is {cfg.space.macro!r}, a network of cells; sensitivity "
                               f"measures a hand-designed network: set space.macro to one of {', '.join(BACKBONES)}")
    if checkpoint is None and not cfg.space.init_from:
        raise SensitivityError(f"{config_path}: space.init_from is empty and no CHECKPOINT was given; name the "
                               "trained network's weights (a torch.save of its state_dict)")
    s = cfg.space
    try:
        network = NetworkConfig(name=s.macro, channels=s.channels, depth=s.depth, backbone=s.backbone)
    except ValueError as exc:
        raise SensitivityError(f"{config_path}: space: {exc}") from None
    field = "space.init_from" if checkpoint is None else "CHECKPOINT"
    return Subject(network, Path(checkpoint or s.init_from), cfg, field, str(config_path))


def from_run(run_dir: Path) -> Subject:
    """A finished hand-designed baseline run: its config.yaml's run.network, its retrained weights, its data.
    The weights' path is made absolute: the JSON names them for a partial search started anywhere (init_from)."""
    rd = RunDir(Path(run_dir).resolve())
    if not rd.config.is_file():
        raise SensitivityError(f"--run-dir {run_dir}: no config.yaml; without --config the run directory must be a "
                               "run the platform or `nasforge search` made (a hand-designed baseline run)")
    try:
        data, run = read_config(rd.config)
        cfg = parse_experiment(data, where=str(rd.config))
    except ValueError as exc:
        raise SensitivityError(str(exc)) from None
    if run.network is None:
        raise SensitivityError(f"{rd.config}: run.network is not set, so this is not a hand-designed baseline run "
                               f"(it is a {run.kind} run). `nasforge sensitivity --run-dir RUN` alone measures the "
                               "network of a finished baseline run of an experiment's baseline.networks; for another "
                               "network give CHECKPOINT --config EXPERIMENT (a partial search's experiment)")
    if not rd.retrained.is_file():
        raise SensitivityError(f"{rd.retrained}: no retrained weights yet; the run's retrain stage writes them, so "
                               "measure it once the run has finished")
    return Subject(run.network, rd.retrained, cfg, str(rd.retrained), str(rd.config))


def _model(subject: Subject):
    """The network with the subject's weights, read (and confined to the platform's roots, when it set them) by
    the partial search's own init_from loader: a copy of the experiment's space that names only this network."""
    from nas_core.space.cell import SpaceError
    from nas_core.space.partial import backbone

    net = subject.network
    # model_copy, not a new SpaceConfig: only the fields that build and load the backbone are read, and a
    # partial search's other rules (search_blocks, cells) do not apply to a network measured as a whole.
    space = subject.cfg.space.model_copy(update={"macro": net.name, "channels": net.channels, "depth": net.depth,
                                                 "backbone": dict(net.backbone),
                                                 "init_from": str(subject.checkpoint)})
    try:
        return backbone(space)
    except SpaceError as exc:
        text = str(exc)
        for prefix in ("space.init_from: ", "space.backbone: "):
            if text.startswith(prefix):
                what = subject.field if prefix.startswith("space.init_from") else f"{subject.source}: network"
                raise SensitivityError(f"{what}: {text.removeprefix(prefix)}") from None
        raise SensitivityError(text) from None


def measure(subject: Subject, *, run_dir: Path | None = None, out: Path | None = None, steps: int = 20,
            candidates: int = 3, lr: float = 0.05, nodes: int = 2, seed: int | None = None,
            device: str | None = None, progress: Callable[[str], None] | None = None) -> tuple[dict, Path]:
    """Measure, then write the JSON (RUN/sensitivity.json with a run directory, else `out`, default
    ./sensitivity.json) and, with a run directory, append one `sensitivity` event. Returns (result, file)."""
    from nas_core.data.datasets import build_datasets
    from nas_core.data.loader import make_loader

    cfg = subject.cfg
    model = _model(subject)
    seed = cfg.seed if seed is None else seed
    ds = build_datasets(cfg.data, cfg.seed)
    if not len(ds["val"]):
        raise SensitivityError(f"{subject.source}: the validation split is empty; raise data.num_tiles or "
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
        # The network as data beside the ranking: what a partial search of a block needs to start from it
        # (the browser prefills one from this file).
        result = {"network": type(model).__name__, "macro": subject.network.name,
                  "network_config": subject.network.model_dump(mode="json"),
                  "in_channels": cfg.space.in_channels, "num_classes": cfg.space.num_classes,
                  "checkpoint": str(subject.checkpoint), "config": subject.source, "val_tiles": len(ds["val"]),
                  **result}
        path = run.sensitivity if run is not None else Path(out or "sensitivity.json")
        write_json(path, result)
        if run is not None:
            with EventLog(run.events) as log:
                log.append(EventKind.sensitivity, event_payload(result, path))
        return result, path
    finally:
        if lock is not None:
            lock.release()


def sensitivity_report(config_path: Path | None = None, checkpoint: Path | None = None, *,
                       run_dir: Path | None = None, **options) -> tuple[dict, Path]:
    """`nasforge sensitivity`: with config_path, the experiment form (results into run_dir or `out`); without,
    run_dir is a finished hand-designed baseline run, measured and written into. `options`: those of measure."""
    if config_path is None:
        if run_dir is None:
            raise SensitivityError("give --run-dir RUN (a finished hand-designed baseline run) or CHECKPOINT "
                                   "--config EXPERIMENT")
        if checkpoint is not None:
            raise SensitivityError("CHECKPOINT needs --config: a run directory alone brings its own weights "
                                   "(checkpoints/retrain.pt)")
        subject = from_run(run_dir)
    else:
        subject = from_experiment(config_path, checkpoint)
    return measure(subject, run_dir=run_dir, **options)


def event_payload(result: dict, path: Path) -> dict:
    """The event's share of the result: the ranking and each block's three measures (the genotypes and every
    cell's IoU stay in the file)."""
    keys = ("name", "role", "rank", "score", "gain", "drop", "taylor_share", "ablation")
    return {"file": str(path), "network": result["network"], "first": result["first"], "order": result["order"],
            "reference_iou": result["reference_iou"], "tuned_reference_iou": result["tuned_reference_iou"],
            "steps": result["steps"], "candidates": result["candidates"],
            "blocks": [{k: b[k] for k in keys} for b in result["blocks"]]}
