"""The short fine-tune every measure shares, and the validation IoU it is scored by.

Each variant of the network (the unchanged reference, a block ablated, a block replaced by a cell) is trained on
the same batches in the same order from the same seed, so the differences between their IoUs come from the
change and not from the data or the draw.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from nas_core.metrics.pixel import confusion_matrix
from nas_core.train.loop import main_logits, segmentation_loss


class SensitivityError(ValueError):
    """The network or its data cannot be measured; the message names the block, file or field and the fix."""


def fixed_batches(loader, steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `steps` batches of `loader` (cycled), drawn once: every variant fine-tunes on this list."""
    if steps <= 0:
        return []
    batches = list(itertools.islice(itertools.cycle(loader), steps))
    if not batches:
        raise SensitivityError("the fine-tune loader is empty; give the training split some tiles")
    return batches


def _frozen_modules_eval(model: nn.Module) -> None:
    # A block whose parameters are all frozen keeps its BatchNorm statistics too (as a frozen partial search
    # does); train mode would move them and change the block the user froze.
    for m in model.modules():
        params = list(m.parameters(recurse=True))
        if params and not any(p.requires_grad for p in params):
            m.eval()


def fine_tune(model: nn.Module, batches, lr: float, seed: int, device) -> nn.Module:
    """SGD with momentum over `batches` on the trainable parameters; modules wholly frozen stay in eval mode."""
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if not batches or not params:
        return model
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    model.train()
    _frozen_modules_eval(model)
    for images, masks in batches:
        opt.zero_grad(set_to_none=True)
        loss = segmentation_loss(main_logits(model(images.to(device))), masks.to(device))
        loss.backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
    return model


@torch.no_grad()
def validation_iou(model: nn.Module, loader, num_classes: int, device) -> float:
    """Pixel IoU of the foreground classes (their mean), from one confusion matrix over the validation split."""
    model.eval()
    cm = np.zeros((num_classes, num_classes), np.int64)
    for images, masks in loader:
        pred = main_logits(model(images.to(device))).argmax(1).cpu()
        cm += confusion_matrix(pred, masks, num_classes)
    tp = np.diag(cm)[1:].astype(np.float64)
    union = cm.sum(0)[1:] + cm.sum(1)[1:] - tp
    present = union > 0
    if not present.any():
        raise SensitivityError("the validation split has no foreground pixel and the network predicts none: "
                               "there is no IoU to lose or gain; use a larger data.num_tiles or val_fraction")
    return float((tp[present] / union[present]).mean())
