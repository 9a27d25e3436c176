"""The project's metrics of a network on another prepared dataset, with the normalisation it was trained with."""
from __future__ import annotations

from pathlib import Path


def evaluate_dataset(predictor, dataset_dir: str | Path, *, batch_size: int = 8, write: bool = True) -> dict:
    """Pixel IoU, Dice, accuracy and, per foreground class, AP and PR curves at the run's IoU thresholds, over
    every tile of the prepared dataset `dataset_dir`. For a predictor loaded from a run directory (and `write`),
    the result goes to RUN/evaluations/<dataset name>.json and an `evaluation` event tagged with the dataset;
    metrics.json is never touched. Refuses (RunDirBusy) while a search writes the run."""
    raise NotImplementedError
