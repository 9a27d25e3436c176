"""A picture of what a network predicted: the tile, its truth, the prediction, and the errors coloured."""
from __future__ import annotations

import numpy as np

# Errors in the colours of a confusion map: hits green, false alarms red, misses blue (colour-blind safe enough
# beside each other, and the usual reading in remote sensing).
TP, FP, FN = (0, 200, 0), (230, 30, 30), (40, 110, 255)


def render_overlay(image: np.ndarray, truth: np.ndarray | None, prediction: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3): the image greyed, foreground that is right in green (TP), predicted but absent in red
    (FP), present but missed in blue (FN); without a truth, the prediction alone in green."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    img = img[:, :, :3]
    if img.dtype != np.uint8:
        scale = float(np.iinfo(img.dtype).max) if np.issubdtype(img.dtype, np.integer) else 1.0
        img = np.clip(img.astype(np.float64) / scale * 255, 0, 255).astype(np.uint8)
    pred = np.asarray(prediction) > 0
    if pred.shape != img.shape[:2]:
        raise ValueError(f"render_overlay: prediction {pred.shape} and image {img.shape[:2]} differ in size")
    # The image in grey at reduced contrast under the colours, so the errors stand out and the scene stays readable.
    grey = (0.6 * img.mean(2, keepdims=True) + 40).clip(0, 255).astype(np.uint8)
    out = np.repeat(grey, 3, axis=2)
    if truth is None:
        out[pred] = TP
        return out
    true = np.asarray(truth) > 0
    if true.shape != pred.shape:
        raise ValueError(f"render_overlay: truth {true.shape} and prediction {pred.shape} differ in size")
    out[pred & true] = TP
    out[pred & ~true] = FP
    out[~pred & true] = FN
    return out
