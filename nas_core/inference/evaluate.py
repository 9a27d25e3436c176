"""The project's metrics of a network on another prepared dataset, with the normalisation it was trained with.

A run's own metrics.json (its test split) is never touched: the result goes to RUN/evaluations/<dataset>.json
and, as an `evaluation` event tagged with the dataset, to the run's log. The log has one writer, so this holds
the run's lock while it writes and refuses while a search runs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from nas_core.data.manifest import load_manifest
from nas_core.data.readers import DataError, read_array
from nas_core.events import EventKind, EventLog
from nas_core.inference.predictor import InferenceError
from nas_core.metrics.scores import SegmentationScores, curves, json_safe, pr_empty_reason
from nas_core.rundir import RunDir, RunLock, write_json


def _tiles(root: Path, tiles: list[dict], batch_size: int):
    """(uint8 (B, H, W, C) images, (B, H, W) masks) batches of the dataset's tiles, as stored."""
    for i in range(0, len(tiles), batch_size):
        images, masks = [], []
        for t in tiles[i:i + batch_size]:
            img = read_array(root / t["image"])
            images.append(img[:, :, None] if img.ndim == 2 else img)
            masks.append(read_array(root / t["mask"]).astype(np.int64))
        yield np.stack(images), np.stack(masks)


def dataset_name(dataset_dir: Path) -> str:
    return Path(dataset_dir).resolve().name


def evaluate_dataset(predictor, dataset_dir: str | Path, *, batch_size: int = 8, write: bool = True) -> dict:
    """Pixel IoU, Dice, accuracy and, per foreground class, AP and PR curves at the model's IoU thresholds, over
    every tile of the prepared dataset `dataset_dir`. For a predictor loaded from a run directory (and `write`),
    the result goes to RUN/evaluations/<dataset name>.json and an `evaluation` event tagged with the dataset;
    metrics.json is never touched. Raises RunDirBusy (before any work) while a search writes the run."""
    root = Path(dataset_dir).expanduser().resolve()
    try:
        manifest = load_manifest(root)
    except DataError as exc:
        raise InferenceError(f"DATASET {exc}") from None
    k, channels = int(manifest["num_classes"]), int(manifest["image_stats"]["channels"])
    if k != predictor.num_classes:
        raise InferenceError(f"DATASET {root}: {k} classes, the model predicts {predictor.num_classes} "
                             f"({', '.join(predictor.classes)}); evaluate on a dataset prepared with the same classes")
    if channels != predictor.in_channels:
        raise InferenceError(f"DATASET {root}: tiles of {channels} band(s), the model takes {predictor.in_channels}")
    run = RunDir(predictor.run_dir) if (write and predictor.run_dir is not None) else None
    lock = RunLock(run.lock).acquire() if run is not None else None
    try:
        scores = SegmentationScores(k, predictor.iou_thresholds)
        for images, masks in _tiles(root, manifest["tiles"], batch_size):
            scores.add(predictor.predict_tiles(images), masks)
        result = scores.result()
        name = dataset_name(root)
        metrics = json_safe({
            "dataset": name, "dataset_path": str(root), "model": str(predictor.source), "tiles": scores.tiles,
            "classes": predictor.classes, "normalisation": predictor.normalisation,
            "miou": result["miou"], "iou": result["iou"], "mdice": result["mdice"], "dice": result["dice"],
            "accuracy": result["accuracy"], "confusion": result["confusion"],
            "ap": {str(t): v for t, v in result["ap"].items()},
            "curves": curves(result["objects"]), "pr_empty_reason": pr_empty_reason(result["objects"]),
        })
        if run is not None:
            metrics["file"] = str(run.evaluations / f"{name}.json")
            write_json(metrics["file"], metrics)
            with EventLog(run.events) as log:
                # stage None: this is not the evaluate stage's test score (the run's headline stays that one).
                log.append(EventKind.evaluation, {"stage": None, "label": f"dataset {name}", **metrics})
        return metrics
    finally:
        if lock is not None:
            lock.release()
