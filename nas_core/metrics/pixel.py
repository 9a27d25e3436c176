"""Pixel metrics of a segmentation: confusion matrix, IoU per class and mean, Dice.

Conventions follow scikit-learn: rows of the confusion matrix are the true class, columns the predicted one.
A class that appears in neither the prediction nor the target has no IoU (NaN) and is left out of the mean.
"""
from __future__ import annotations

import numpy as np
import torch


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def confusion_matrix(pred, target, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; `pred` and `target` are class-index arrays of one shape."""
    p = _as_numpy(pred).astype(np.int64).ravel()
    t = _as_numpy(target).astype(np.int64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"confusion_matrix: prediction has {p.size} pixels, target {t.size}; they must match")
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    for name, a in (("prediction", p), ("target", t)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} holds class {int(a.max() if a.max() >= num_classes else a.min())} "
                             f"outside 0..{num_classes - 1}; pass the right num_classes or an ignore_index")
    # One bincount over (true, pred) pairs: far faster than a Python loop over classes.
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _cm(cm_or_pred, target=None, num_classes: int | None = None) -> np.ndarray:
    if target is None:
        cm = _as_numpy(cm_or_pred).astype(np.int64)
        if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
            raise ValueError("expected a square confusion matrix, or (pred, target, num_classes)")
        return cm
    if num_classes is None:
        raise ValueError("num_classes is needed to score a prediction against a target")
    return confusion_matrix(cm_or_pred, target, num_classes)


def pixel_iou(cm_or_pred, target=None, num_classes: int | None = None) -> dict:
    """{"per_class": [IoU or NaN], "mean": mean over classes that occur}; pass a confusion matrix or pred, target, K."""
    cm = _cm(cm_or_pred, target, num_classes)
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    present = ~np.isnan(iou)
    return {"per_class": iou.tolist(), "mean": float(iou[present].mean()) if present.any() else float("nan")}


def dice(cm_or_pred, target=None, num_classes: int | None = None) -> dict:
    """Dice (F1) per class and mean, same conventions as `pixel_iou`."""
    cm = _cm(cm_or_pred, target, num_classes)
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(0) + cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(denom > 0, 2 * tp / denom, np.nan)
    present = ~np.isnan(d)
    return {"per_class": d.tolist(), "mean": float(d[present].mean()) if present.any() else float("nan")}


def pixel_accuracy(cm_or_pred, target=None, num_classes: int | None = None) -> float:
    cm = _cm(cm_or_pred, target, num_classes)
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")
