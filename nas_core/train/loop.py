"""Training and evaluation loop helpers shared by the retrain stage and the baselines: loss, one epoch, evaluate."""
from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from nas_core.metrics.scores import SegmentationScores


def main_logits(out):
    # A network with an auxiliary head returns (logits, aux); only the main logits are trained and scored here.
    return out[0] if isinstance(out, (tuple, list)) else out


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0,
                      reduce_sum=None) -> torch.Tensor:
    """Cross-entropy plus soft Dice over the foreground classes.

    Objects cover a few percent of a satellite tile; Dice keeps the small class from being traded away for
    background accuracy, which cross-entropy alone does early in training. Dice is a ratio of sums over the whole
    batch, so data-parallel ranks pass `reduce_sum` (a differentiable sum over ranks) to score the global batch.
    """
    ce = F.cross_entropy(logits, target)
    if dice_weight <= 0:
        return ce
    probs = logits.softmax(1)[:, 1:]
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(probs.dtype)
    inter = (probs * onehot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    if reduce_sum is not None:
        inter, denom = reduce_sum(torch.cat([inter, denom])).chunk(2)
    soft_dice = (2 * inter + 1) / (denom + 1)
    return ce + dice_weight * (1 - soft_dice.mean())


def train_epoch(model: nn.Module, loader, optimizer, device, grad_clip: float | None = None, scheduler=None,
                max_steps: int | None = None, deadline: float | None = None) -> dict:
    """One pass over `loader`; stops early at `max_steps` batches or the monotonic `deadline`."""
    import time

    model.train()
    total, steps = 0.0, 0
    for images, masks in loader:
        if max_steps is not None and steps >= max_steps:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = segmentation_loss(main_logits(model(images)), masks)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += float(loss.detach())
        steps += 1
        if not math.isfinite(total):
            raise FloatingPointError("training loss is not finite; lower the learning rate")
    return {"loss": total / max(steps, 1), "steps": steps}


@torch.no_grad()
def evaluate(model: nn.Module, loader, num_classes: int, device,
             iou_thresholds: Iterable[float] = (0.25, 0.5, 0.75)) -> dict:
    """Pixel metrics and, per foreground class, object PR curves and AP at each IoU threshold."""
    model.eval()
    scores = SegmentationScores(num_classes, iou_thresholds)
    for images, masks in loader:
        scores.add(main_logits(model(images.to(device))).float().softmax(1).cpu(), masks)
    return scores.result()
