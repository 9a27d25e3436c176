"""Mixed precision against float32 on one search step (first-order architecture step + weight step) of the
default U-Net supernet: step time, peak memory and the loss and alpha-gradient agreement of bf16 autocast and
channels_last (nas_core.train.precision), on the same weights and batch.

`python -m bench amp_step [--quick] [size=512] [batch=4] [channels=8] [depth=2] [steps=5]`. On CPU bf16 is
emulated by oneDNN and channels_last is refused (see docs/search.md), so the figure that matters is the CUDA one
(bench/gpu.sh); --quick checks the code on CPU with float32 and bf16 only.
"""
from __future__ import annotations

import copy
import statistics

import torch

from bench._timing import synchronizer, timed_steps

VARIANTS = {"float32": {"amp": "off", "channels_last": "off"}, "bf16": {"amp": "bf16", "channels_last": "off"},
            "bf16+channels_last": {"amp": "bf16", "channels_last": "on"}}


def run(quick: bool = False, size: int | str = 512, batch: int | str = 4, channels: int | str = 8,
        depth: int | str = 2, steps: int | str = 5, device: str = "auto", **_) -> dict:
    from nas_core.config import parse_experiment
    from nas_core.search.architect import build_architect
    from nas_core.search.loop import build_search_supernet, search_loss
    from nas_core.train.precision import resolve_precision

    size, batch, channels, depth, steps = int(size), int(batch), int(channels), int(depth), int(steps)
    if quick:
        size, batch, channels, depth, steps = 32, 2, 4, 1, 1
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    variants = dict(VARIANTS) if dev.type == "cuda" else {k: v for k, v in VARIANTS.items() if "channels_last" not in k}
    base_cfg = parse_experiment({"name": "amp", "space": {"channels": channels, "depth": depth}})
    torch.manual_seed(0)
    base = build_search_supernet(base_cfg).to(dev)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, batch, 3, size, size, generator=g).to(dev)
    y = (torch.rand(2, batch, size, size, generator=g) < 0.1).long().to(dev)
    train, val = (x[0], y[0]), (x[1], y[1])
    sync = synchronizer(dev)
    out = {}
    for name, compute in variants.items():
        cfg = parse_experiment({"name": "amp", "space": {"channels": channels, "depth": depth}, "compute": compute})
        model = copy.deepcopy(base)
        precision = resolve_precision(cfg.compute, dev)
        precision.prepare(model)
        loss_fn = precision.loss(search_loss)
        architect = build_architect(cfg.search, model, loss_fn)
        w = list(model.weight_parameters())
        opt = torch.optim.SGD(w, lr=0.025, momentum=0.9)
        first_loss = float(loss_fn(model, train).detach())
        alpha_grad = torch.cat([g_.flatten() for g_ in torch.autograd.grad(loss_fn(model, val), architect.arch_params,
                                                                           allow_unused=True) if g_ is not None])

        def step():
            architect.step(train, val, 0.025, opt)
            grads = torch.autograd.grad(loss_fn(model, train), w, allow_unused=True)
            for p, g_ in zip(w, grads):
                p.grad = g_
            opt.step()

        step()
        sync()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        times = timed_steps(step, steps, dev)
        out[name] = {"step_s": statistics.median(times), "loss": first_loss, "alpha_grad": alpha_grad,
                     "peak_bytes": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None}
    ref = out["float32"]
    rows = {}
    for name, r in out.items():
        cos = float(torch.nn.functional.cosine_similarity(r["alpha_grad"], ref["alpha_grad"], dim=0))
        rows[name] = {"step_s": round(r["step_s"], 4), "speedup": round(ref["step_s"] / r["step_s"], 3),
                      "loss_rel_diff": abs(r["loss"] - ref["loss"]) / abs(ref["loss"]), "alpha_grad_cosine": cos,
                      "peak_mib": None if r["peak_bytes"] is None else round(r["peak_bytes"] / 2**20, 1)}
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    parts = "; ".join(f"{k} {v['speedup']:.2f}x ({v['step_s']:.3f} s" + (f", {v['peak_mib']:.0f} MiB" if v["peak_mib"] else "")
                      + f", loss diff {v['loss_rel_diff']:.1e}, alpha-grad cosine {v['alpha_grad_cosine']:.3f})"
                      for k, v in rows.items())
    return {"figure": f"search step, batch {batch} x {size} px, C={channels}, depth {depth}, {where}: {parts}",
            "rows": rows, "params": {"size": size, "batch": batch, "channels": channels, "depth": depth, "steps": steps}}
