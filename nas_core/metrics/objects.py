"""Object metrics: connected components of a prediction, scored by mean probability, matched one-to-one with
ground-truth components; precision-recall curves and average precision at several IoU thresholds.

Matching is greedy by descending score (as in PASCAL VOC and COCO): each predicted object takes the unmatched
ground-truth object it overlaps most, if that IoU reaches the threshold; otherwise it is a false positive.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage

from nas_core.metrics.pixel import _as_numpy

DEFAULT_IOU_THRESHOLDS = (0.25, 0.5, 0.75)
# 8-connectivity: a diagonal touch joins two pixels, so thin rotated shapes stay one object.
_STRUCTURE = np.ones((3, 3), dtype=bool)


def connected_components(mask) -> tuple[np.ndarray, int]:
    """Label the True pixels of a 2-D mask: (labels with 0 for background and 1..n for objects, n)."""
    m = _as_numpy(mask).astype(bool)
    if m.ndim != 2:
        raise ValueError(f"connected_components: expected a 2-D mask, got shape {m.shape}")
    labels, n = ndimage.label(m, structure=_STRUCTURE)
    return labels, int(n)


def _overlaps(pred_labels: np.ndarray, n_pred: int, gt_labels: np.ndarray, n_gt: int) -> np.ndarray:
    """IoU of every predicted object (rows) with every ground-truth object (columns)."""
    joint = np.bincount(pred_labels.ravel().astype(np.int64) * (n_gt + 1) + gt_labels.ravel(),
                        minlength=(n_pred + 1) * (n_gt + 1)).reshape(n_pred + 1, n_gt + 1)
    area_p = joint.sum(1)[1:, None]
    area_g = joint.sum(0)[None, 1:]
    inter = joint[1:, 1:]
    union = area_p + area_g - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def match_objects(pred, prob, target, iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS) -> dict:
    """Score and match the objects of one image.

    pred: boolean mask of predicted foreground; prob: the probability map that scores each predicted object
    (its mean over the object's pixels); target: boolean ground-truth mask.
    Returns {"scores": (n_pred,), "tp": {threshold: bool (n_pred,)}, "num_gt": int, "iou": (n_pred, n_gt)}.
    """
    pred = _as_numpy(pred).astype(bool)
    target = _as_numpy(target).astype(bool)
    prob = _as_numpy(prob).astype(np.float64)
    if not (pred.shape == target.shape == prob.shape):
        raise ValueError(f"match_objects: pred {pred.shape}, prob {prob.shape} and target {target.shape} must have one shape")
    pred_labels, n_pred = connected_components(pred)
    gt_labels, n_gt = connected_components(target)
    if n_pred:
        sums = np.bincount(pred_labels.ravel(), weights=prob.ravel(), minlength=n_pred + 1)[1:]
        areas = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)[1:]
        scores = sums / areas
    else:
        scores = np.zeros(0)
    iou = _overlaps(pred_labels, n_pred, gt_labels, n_gt)
    order = np.argsort(-scores, kind="stable")
    tp = {}
    for thr in iou_thresholds:
        hit = np.zeros(n_pred, dtype=bool)
        taken = np.zeros(n_gt, dtype=bool)
        for i in order:
            if not n_gt:
                break
            cand = np.where(taken, -1.0, iou[i])
            j = int(np.argmax(cand))
            if cand[j] >= thr and cand[j] > 0:
                hit[i] = True
                taken[j] = True
        tp[float(thr)] = hit
    return {"scores": scores, "tp": tp, "num_gt": n_gt, "iou": iou}


def precision_recall_curve(scores, tp, num_gt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at each distinct score, from the highest threshold down (recall rises).

    Returns (precision, recall, thresholds); detections with equal scores enter together, as in scikit-learn.
    Ground-truth objects no prediction found keep recall below 1.
    """
    scores = np.asarray(scores, dtype=np.float64)
    tp = np.asarray(tp, dtype=bool)
    if scores.shape != tp.shape:
        raise ValueError("precision_recall_curve: scores and tp must have the same length")
    order = np.argsort(-scores, kind="stable")
    scores, tp = scores[order], tp[order]
    ctp = np.cumsum(tp)
    cfp = np.cumsum(~tp)
    # The last index of each run of equal scores: a threshold admits all of them or none.
    last = np.r_[np.where(np.diff(scores) != 0)[0], scores.size - 1] if scores.size else np.zeros(0, dtype=int)
    ctp, cfp = ctp[last], cfp[last]
    precision = ctp / np.maximum(ctp + cfp, 1)
    recall = ctp / num_gt if num_gt > 0 else np.full(ctp.shape, np.nan)
    return precision, recall, scores[last]


def average_precision(precision, recall, interpolate: bool = True) -> float:
    """Area under a precision-recall curve given from high threshold to low (recall non-decreasing).

    interpolate=True: all-point interpolation (PASCAL VOC 2010+): precision at recall r is the best precision at
    any recall >= r. interpolate=False: the plain step sum of (R_n - R_{n-1}) P_n, scikit-learn's definition.
    NaN when there is no ground truth; 0 when there are objects but no predictions.
    """
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    if recall.size and np.isnan(recall).all():
        return float("nan")
    if not recall.size:
        return 0.0
    if interpolate:
        precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(steps * precision))


class ObjectAccumulator:
    """Collects matches over many images and gives the dataset's PR curves and AP per IoU threshold."""

    def __init__(self, iou_thresholds: Iterable[float] = DEFAULT_IOU_THRESHOLDS):
        self.iou_thresholds = tuple(float(t) for t in iou_thresholds)
        self._scores: list[np.ndarray] = []
        self._tp: dict[float, list[np.ndarray]] = {t: [] for t in self.iou_thresholds}
        self.num_gt = 0

    def add(self, pred, prob, target) -> None:
        m = match_objects(pred, prob, target, self.iou_thresholds)
        self._scores.append(m["scores"])
        for t in self.iou_thresholds:
            self._tp[t].append(m["tp"][t])
        self.num_gt += m["num_gt"]

    def result(self) -> dict:
        """{threshold: {"ap", "precision", "recall", "thresholds", "num_pred", "num_gt"}}."""
        scores = np.concatenate(self._scores) if self._scores else np.zeros(0)
        out = {}
        for t in self.iou_thresholds:
            tp = np.concatenate(self._tp[t]) if self._tp[t] else np.zeros(0, dtype=bool)
            p, r, th = precision_recall_curve(scores, tp, self.num_gt)
            out[t] = {"ap": average_precision(p, r) if self.num_gt else float("nan"),
                      "precision": p, "recall": r, "thresholds": th,
                      "num_pred": int(scores.size), "num_gt": self.num_gt}
        return out
