"""Training-step throughput (images/s) and peak memory of the default U-Net supernet against the plain
reference MixedOp (bench/reference_mixed_op.py), with the same weights, inputs and loss (checked to 1e-5).

Steps of the two are interleaved and the median taken: the machine is shared and noisy.
"""
from __future__ import annotations

import gc
import statistics
import time

import torch
import torch.nn.functional as F

from bench.reference_mixed_op import ReferenceSupernet
from nas_core.space import SpaceConfig, build_supernet


def _step(model, x, target):
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), target)
    loss.backward()
    return loss.item()


def _peak_cuda(fn):
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def _saved_mb(model, x, target) -> float:
    """Bytes autograd keeps for the backward pass (distinct storages): the activation memory of a step on CPU."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), target)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values()) / 2**20


def run(quick: bool = False, batch: int | str = 8, size: int | str = 64, steps: int | str = 12, threads: int | str = 0,
        channels: int | str = 8, depth: int | str = 2, device: str = "auto", **_) -> dict:
    batch, size, steps, channels, depth = int(batch), int(size), int(steps), int(channels), int(depth)
    if quick:
        batch, size, steps = 2, 32, 2
    if int(threads):
        torch.set_num_threads(int(threads))
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    torch.manual_seed(0)
    space = SpaceConfig(channels=channels, depth=depth)
    fast = build_supernet(space).to(dev)
    ref = ReferenceSupernet(fast).to(dev)
    x = torch.randn(batch, space.in_channels, size, size, device=dev)
    target = torch.randint(0, space.num_classes, (batch, size, size), device=dev)

    # Same loss and gradients (both in train mode, batch statistics): the comparison is of one computation.
    loss_fast, loss_ref = _step(fast, x, target), _step(ref, x, target)
    _step(fast, x, target)
    gb = {t: a.grad.clone() for t, a in fast.alphas().items()}
    fast.zero_grad(set_to_none=True)
    _step(ref, x, target)  # the reference reads the same alphas: their grad now comes from the reference
    gr = {t: a.grad.clone() for t, a in fast.alphas().items()}
    alpha_grad_diff = max((gb[t] - gr[t]).abs().max().item() for t in gb)
    if abs(loss_fast - loss_ref) > 1e-5:
        raise AssertionError(f"losses differ: fast {loss_fast} vs reference {loss_ref}")

    times = {"fast": [], "reference": []}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(steps):
        for name, model in (("reference", ref), ("fast", fast)):
            sync()
            t0 = time.perf_counter()
            _step(model, x, target)
            sync()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    ips = {k: batch / v for k, v in med.items()}
    peak = {}
    if dev.type != "cuda":
        peak = {name: round(_saved_mb(m, x, target), 1) for name, m in (("reference", ref), ("fast", fast))}
    else:
        for name, model in (("reference", ref), ("fast", fast)):
            gc.collect()
            peak[name] = round(_peak_cuda(lambda: _step(model, x, target)), 1)
    ratio = ips["fast"] / ips["reference"]
    where = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    return {
        "figure": f"supernet train step {ratio:.2f}x the reference MixedOp ({ips['fast']:.1f} vs {ips['reference']:.1f} img/s, "
                  f"batch {batch} x {size}px, {where})",
        "speedup": round(ratio, 3),
        "images_per_s": {k: round(v, 2) for k, v in ips.items()},
        "median_step_s": {k: round(v, 4) for k, v in med.items()},
        "loss": {"fast": loss_fast, "reference": loss_ref, "abs_diff": abs(loss_fast - loss_ref)},
        "alpha_grad_max_abs_diff": alpha_grad_diff,
        "peak_memory_mb": peak,
        "memory_measure": "torch.cuda.max_memory_allocated" if dev.type == "cuda" else "autograd saved tensors (activations)",
        "params": {"batch": batch, "size": size, "steps": steps, "channels": channels, "depth": depth, "device": str(dev)},
    }
