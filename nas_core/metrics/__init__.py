"""Evaluation metrics: pixel (confusion matrix, IoU, Dice) and object (matching, PR curves, AP at IoU thresholds)."""
from nas_core.metrics.objects import (
    DEFAULT_IOU_THRESHOLDS,
    ObjectAccumulator,
    average_precision,
    connected_components,
    match_objects,
    precision_recall_curve,
)
from nas_core.metrics.pixel import confusion_matrix, dice, pixel_accuracy, pixel_iou
from nas_core.metrics.scores import SegmentationScores, empty_reason

__all__ = [
    "DEFAULT_IOU_THRESHOLDS", "ObjectAccumulator", "SegmentationScores", "average_precision", "confusion_matrix",
    "connected_components", "dice", "empty_reason", "match_objects", "pixel_accuracy", "pixel_iou",
    "precision_recall_curve",
]
