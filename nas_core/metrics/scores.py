"""The segmentation scores of a network over many tiles, one batch at a time: the confusion matrix (pixel IoU,
Dice, accuracy) and, per foreground class, the objects matched for PR curves and AP at the IoU thresholds.

One accumulator for the retrain and evaluate stages and for `nasforge evaluate`, so their numbers mean the same.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from nas_core.metrics.objects import ObjectAccumulator
from nas_core.metrics.pixel import _as_numpy, confusion_matrix, dice, pixel_accuracy, pixel_iou


def empty_reason(num_pred: int, num_gt: int) -> str | None:
    """Why a precision-recall curve has no points (the UI says it instead of drawing an empty panel), or None."""
    if num_pred and num_gt:
        return None
    if not num_pred and not num_gt:
        return "no predicted objects and no ground-truth objects"
    return "no predicted objects" if not num_pred else "no ground-truth objects"


class SegmentationScores:
    """add(probs (N, K, H, W), masks (N, H, W)) per batch, then result()."""

    def __init__(self, num_classes: int, iou_thresholds: Iterable[float] = (0.25, 0.5, 0.75)):
        self.num_classes = num_classes
        self.thresholds = tuple(float(t) for t in iou_thresholds)
        self.cm = np.zeros((num_classes, num_classes), np.int64)
        self.objects = {c: ObjectAccumulator(self.thresholds) for c in range(1, num_classes)}
        self.tiles = 0

    def add(self, probs, masks) -> None:
        probs, masks = _as_numpy(probs), _as_numpy(masks)
        pred = probs.argmax(1)
        self.cm += confusion_matrix(pred, masks, self.num_classes)
        for b in range(pred.shape[0]):
            for c, acc in self.objects.items():
                acc.add(pred[b] == c, probs[b, c], masks[b] == c)
        self.tiles += pred.shape[0]

    def result(self) -> dict:
        """{"confusion", "iou", "miou", "dice", "mdice", "accuracy", "ap": {t: mean over classes},
        "objects": {class: {t: curve}}} (NaN where undefined, as the metrics functions give it)."""
        per_class = {c: acc.result() for c, acc in self.objects.items()}
        ap = {}
        for t in self.thresholds:
            vals = [per_class[c][t]["ap"] for c in per_class if not math.isnan(per_class[c][t]["ap"])]
            ap[t] = float(np.mean(vals)) if vals else float("nan")
        iou, dsc = pixel_iou(self.cm), dice(self.cm)
        return {"confusion": self.cm, "iou": iou["per_class"], "miou": iou["mean"], "dice": dsc["per_class"],
                "mdice": dsc["mean"], "accuracy": pixel_accuracy(self.cm), "ap": ap, "objects": per_class}
