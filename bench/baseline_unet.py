"""A hand-designed U-Net baseline on the Airbus sample: test IoU and AP@0.5, the reference for every searched cell.

`python -m bench baseline_unet [model=plain|resnext] [scale=0.25] [tile_size=128] [train_seconds=360] [channels=8]
[depth=3] [cardinality=4] [bottleneck_width=2] ...`: the plain U-Net, or the ResNeXt U-Net of issue 18 (cardinality
groups of bottleneck_width channels at the first level).
Scenes are downsampled by `scale` before tiling so a 2-core CPU trains within the budget; splits are by scene
(seed 0). The prepared tiles are cached under the system temp folder and reused while spec and sources match.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from bench._airbus import airbus_spec
from nas_core.data import DataConfig, build_datasets
from nas_core.data.prepare import prepare
from nas_core.models.plain_unet import PlainUNet
from nas_core.models.resnext_unet import ResNeXtUNet
from nas_core.train.retrain import train_and_evaluate

MODELS = ("plain", "resnext")


def run(quick: bool = False, scale: str = "0.25", tile_size: str = "128", train_seconds: str = "360",
        epochs: str = "30", channels: str = "8", depth: str = "3", batch_size: str = "8", lr: str = "0.05",
        max_empty_fraction: str = "0.5", threads: str = "0", seed: str = "0", model: str = "plain",
        cardinality: str = "4", bottleneck_width: str = "2", **_) -> dict:
    if model not in MODELS:
        raise ValueError(f"baseline_unet: model={model!r}; choose one of {', '.join(MODELS)}")
    if int(threads):
        torch.set_num_threads(int(threads))
    scale_f, tile = float(scale), int(tile_size)
    limit = 8 if quick else None
    cache = Path(tempfile.gettempdir()) / "nasforge-bench" / f"airbus-s{scale_f:g}-t{tile}-e{max_empty_fraction}-l{limit}"
    t0 = time.perf_counter()
    out = prepare(airbus_spec(cache, tile, scale=scale_f, limit=limit, max_empty_fraction=float(max_empty_fraction)),
                  progress=False)
    prep_s = time.perf_counter() - t0
    data = DataConfig(source="prepared", path=str(out), batch_size=int(batch_size))
    ds = build_datasets(data, int(seed))
    torch.manual_seed(int(seed))
    if model == "resnext":
        net = ResNeXtUNet(3, 2, channels=int(channels), depth=int(depth), cardinality=int(cardinality),
                          bottleneck_width=int(bottleneck_width))
        name = f"ResNeXt U-Net (c={channels}, depth {depth}, {cardinality}x{bottleneck_width}d"
    else:
        net = PlainUNet(3, 2, channels=int(channels), depth=int(depth))
        name = f"plain U-Net (c={channels}, depth {depth}"
    budget = 20.0 if quick else float(train_seconds)
    r = train_and_evaluate(net, ds, epochs=int(epochs), lr=float(lr), batch_size=int(batch_size), seed=int(seed),
                           device=None, time_budget_s=budget, label=f"{model}-unet")
    iou_fg, ap = r["iou"][1], r["ap"]
    obj = r["objects"][1][0.5]
    epochs_done = r["steps"] / max(1, -(-(len(ds["train_w"]) + len(ds["train_a"])) // int(batch_size)))
    return {
        "figure": (f"{name}, {r['params']} params) on Airbus scenes x{scale_f:g} cut "
                   f"in {tile} px tiles, {r['steps']} steps (~{epochs_done:.1f} epochs, {r['train_seconds']:.0f} s budget): "
                   f"test aircraft IoU {iou_fg:.3f}, mIoU {r['miou']:.3f}, AP@0.25 {ap[0.25]:.3f}, AP@0.5 {ap[0.5]:.3f}, "
                   f"AP@0.75 {ap[0.75]:.3f} ({obj['num_gt']} test aircraft)"),
        "prepare_seconds": round(prep_s, 1),
        "tiles": {k: len(v) for k, v in ds.items()},
        "test_scenes": len(set(ds["test"].scenes)),
        "iou": r["iou"], "miou": r["miou"], "dice": r["dice"], "ap": {str(k): v for k, v in ap.items()},
        "num_gt": obj["num_gt"], "num_pred": obj["num_pred"], "steps": r["steps"],
        "train_seconds": round(r["train_seconds"], 1), "stopped_by": r["stopped_by"], "history": r["history"],
        "model": model, "params": r["params"], "device": "cuda" if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(),
    }
