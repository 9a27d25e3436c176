"""The segmentation scores of a network over many tiles, one batch at a time: the confusion matrix (pixel IoU,
Dice, accuracy) and, per foreground class, the objects matched for PR curves and AP at the IoU thresholds.

One accumulator for the retrain and evaluate stages and for `nasforge evaluate`, so their numbers mean the same.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

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


def json_safe(x: Any) -> Any:
    """JSON-safe copy: NaN and inf become None, arrays lists (the event log and write_json refuse NaN)."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def thin_curve(curve: dict, points: int) -> dict:
    """At most `points` points of a PR curve, evenly spread, keeping both ends (events stay small), and why it
    has none when it has none (`empty_reason`)."""
    n = len(curve["precision"])
    idx = np.unique(np.linspace(0, n - 1, min(n, points)).round().astype(int)) if n else np.zeros(0, int)
    return {"ap": curve["ap"], "precision": curve["precision"][idx], "recall": curve["recall"][idx],
            "score": curve["thresholds"][idx], "num_pred": curve["num_pred"], "num_gt": curve["num_gt"],
            "empty_reason": empty_reason(curve["num_pred"], curve["num_gt"])}


def curves(objects: dict, points: int = 101) -> dict:
    """{class: {threshold: thinned curve}} of a result's "objects"."""
    return {c: {t: thin_curve(v, points) for t, v in per_t.items()} for c, per_t in objects.items()}


def pr_empty_reason(objects: dict) -> str | None:
    """Why the precision-recall panel of a result has nothing to draw: every foreground class lacks predicted or
    ground-truth objects (the reasons, one per distinct case), or None when some class has a curve."""
    reasons = []
    for per_t in objects.values():
        first = next(iter(per_t.values()), None)
        reason = empty_reason(first["num_pred"], first["num_gt"]) if first else "no foreground class"
        if reason is None:
            return None
        reasons.append(reason)
    if not reasons:
        return "no foreground class"
    return "; ".join(dict.fromkeys(reasons))
