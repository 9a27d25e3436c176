"""Sample predictions of the evaluate stage: a few test tiles drawn as image | truth | prediction | errors, one PNG
each, and an index the run page reads (RunDir.samples)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nas_core.inference.overlay import FN, FP, TP, render_overlay
from nas_core.rundir import write_atomic, write_json

INDEX = "index.json"
PANELS = ("image", "truth", "prediction", "errors")


def _pick(dataset, n: int) -> list[int]:
    """Tiles with objects first (an empty tile shows little), in dataset order, then empty ones to make up `n`;
    only the first few hundred tiles are looked at, so a large test split costs no more than a small one."""
    full, empty = [], []
    for i in range(min(len(dataset), 256)):
        (full if bool((dataset[i][1] > 0).any()) else empty).append(i)
        if len(full) >= n:
            break
    return (full + empty)[:n]


def _display(image: torch.Tensor, dataset) -> np.ndarray:
    """uint8 (H, W, C) of a normalised (C, H, W) tile: the view's normalisation undone."""
    mean, std = getattr(dataset, "mean", None), getattr(dataset, "std", None)
    if mean is not None:
        image = image * std + mean
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def _mask_rgb(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Classes as grey levels, background black, the last class white."""
    level = (mask.astype(np.float64) * 255 / max(num_classes - 1, 1)).astype(np.uint8)
    return np.repeat(level[:, :, None], 3, axis=2)


@torch.no_grad()
def write_samples(network: torch.nn.Module, dataset, out_dir: str | Path, n: int = 4, device="cpu") -> dict:
    """Predict `n` tiles of `dataset` (items: normalised image, mask) with `network` (logits out) and write
    <out_dir>/sample-<i>.png and <out_dir>/index.json; returns the index."""
    out_dir = Path(out_dir)
    network.eval()
    k = int(getattr(dataset, "num_classes", 2))
    scenes = getattr(dataset, "scenes", None)
    entries = []
    for j, i in enumerate(_pick(dataset, n)):
        image, mask = dataset[i]
        out = network(image[None].to(device))
        logits = out[0] if isinstance(out, (tuple, list)) else out
        pred = logits.float().argmax(1)[0].cpu().numpy()
        truth = mask.numpy()
        rgb = _display(image, dataset)
        if rgb.shape[2] == 1:
            rgb = np.repeat(rgb, 3, axis=2)
        panels = [rgb[:, :, :3], _mask_rgb(truth, k), _mask_rgb(pred, k), render_overlay(rgb, truth, pred)]
        gap = np.full((rgb.shape[0], 2, 3), 255, np.uint8)  # a white line between panels
        strip = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
        name = f"sample-{j}.png"
        buf = io.BytesIO()
        Image.fromarray(strip).save(buf, format="PNG")
        write_atomic(out_dir / name, buf.getvalue())
        fg_t, fg_p = truth > 0, pred > 0
        union = int((fg_t | fg_p).sum())
        entries.append({"file": name, "tile": int(i), "scene": scenes[i] if scenes else None,
                        "size": list(truth.shape), "foreground_truth_px": int(fg_t.sum()),
                        "foreground_predicted_px": int(fg_p.sum()),
                        "foreground_iou": (int((fg_t & fg_p).sum()) / union) if union else None})
    index = {"panels": list(PANELS), "legend": {"true positive": TP, "false positive": FP, "false negative": FN},
             "samples": entries}
    write_json(out_dir / INDEX, index)
    return index
