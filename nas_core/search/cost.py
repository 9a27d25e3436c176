"""The cost model behind `nasforge plan`: what a continuous search will take before it is submitted.

It builds the experiment's own supernet, data and loaders (nas_core.search.loop.BilevelSearch, no events
written), counts parameters and the activation bytes autograd keeps per image, and times a few real search
steps (loader, architecture step, weight step) and validation batches on the chosen device. Wall time and memory
are then extrapolated to the configured epochs, steps per epoch and batch: activations grow linearly with the
batch, the rest (weights, gradients, optimiser states) does not.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass

import torch

from nas_core.config import ExperimentConfig
from nas_core.search.reporting import NullSink

# Besides the weights: their gradient, SGD's momentum buffer, and the saved copy of the unrolled DARTS step.
_STATE_COPIES = {1: 3, 2: 4}


@dataclass
class Plan:
    device: str
    precision: dict
    params_weights: int
    params_arch: int
    batch_size: int
    steps_per_epoch: int
    val_batches: int
    epochs: int
    warmup_epochs: int
    step_s: float  # one search step with architecture update (median of the measured ones)
    step_s_weights_only: float
    val_batch_s: float
    step_s_per_image: float
    activation_bytes_per_image: int
    state_bytes: int
    memory_bytes: int  # predicted peak at the configured batch
    available_bytes: int
    max_batch: int
    wall_s: float
    measured_steps: int
    first_step_s: float = 0.0  # the untimed warm-up step; with compute.compile, the compilation (in wall_s)

    def to_dict(self) -> dict:
        return asdict(self)


def _available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _saved_bytes(search, batch) -> int:
    """Bytes autograd keeps for backward in one training forward (each storage once): the activations."""
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
        return t

    params = {p.untyped_storage().data_ptr() for p in search.model.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = search.loss_fn(search.model, batch)
    del loss
    return sum(n for ptr, n in seen.items() if ptr not in params)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_steps(search, steps: int, arch_on: bool) -> list[float]:
    """Seconds of one warm-up step and then of each of `steps` search steps, batches drawn from the loaders as the
    loop does."""
    from nas_core.search.loop import _Cycle

    loader = search.train_loader
    loader.sampler.set_epoch(0)
    arch = _Cycle(search.arch_loader, 0) if search.arch_loader is not None else None
    w_lr = search.scheduler.get_last_lr()[0]
    times: list[float] = []
    it = iter(loader)
    for _ in range(steps + 1):
        _sync(search.device)
        t0 = time.perf_counter()
        try:
            raw = next(it)
        except StopIteration:
            it = iter(loader)
            raw = next(it)
        batch = search._batch(raw)
        if arch_on and not search.single_level:
            search.architect.step(batch, search._batch(arch.next()), w_lr, search.w_optimizer, search.reduce_grads)
        search._weight_step(batch, arch_on)
        _sync(search.device)
        times.append(time.perf_counter() - t0)
    return times


@torch.no_grad()
def _time_validation(search, batches: int) -> float:
    model = search.precision.wrap(search.model)
    model.eval()
    times = []
    for i, raw in enumerate(search.val_loader):
        if i > batches:
            break
        _sync(search.device)
        t0 = time.perf_counter()
        images, _ = search._batch(raw)
        model(images)
        _sync(search.device)
        times.append(time.perf_counter() - t0)
    model.train()
    return statistics.median(times[1:] or times)


def plan_search(cfg: ExperimentConfig, device: str | None = None, steps: int = 5) -> Plan:
    """Measure `steps` steps of `cfg`'s search on `device` and extrapolate the whole search stage."""
    from nas_core.search.architect import warmup_epochs
    from nas_core.search.loop import BilevelSearch

    if steps < 1:
        raise ValueError("plan: steps must be >= 1")
    search = BilevelSearch(cfg, NullSink(), os.devnull, device=device)
    dev = search.device
    batch = search._batch(next(iter(search.train_loader)))
    n_img = int(batch[0].shape[0])
    act = _saved_bytes(search, batch) // max(n_img, 1)
    warm = min(warmup_epochs(cfg.search), cfg.search.epochs)
    first, *timed = _time_steps(search, steps, arch_on=True)
    t_arch = statistics.median(timed)
    t_w = statistics.median(_time_steps(search, steps, arch_on=False)[1:]) if warm else t_arch
    val_batches = len(search.val_loader)
    t_val = _time_validation(search, min(steps, val_batches))
    spe = len(search.train_loader)
    epochs = cfg.search.epochs
    wall = spe * (warm * t_w + (epochs - warm) * t_arch) + epochs * val_batches * t_val
    if search.precision.compile:  # compiled once per run, on the first weight step: minutes on a CPU
        wall += max(first - t_arch, 0.0)
    w = sum(p.numel() for p in search.model.weight_parameters())
    a = sum(p.numel() for p in search.model.arch_parameters())
    order = getattr(cfg.search, "order", 1)
    state = 4 * (w * (1 + _STATE_COPIES.get(order, 3)) + 4 * a)  # float32: weights + copies, alpha + Adam + grad
    bs = cfg.data.batch_size
    available = _available_bytes(dev)
    max_batch = max(0, int((available - state) // max(act, 1)))
    return Plan(device=str(dev), precision=search.precision.describe(), params_weights=w, params_arch=a,
                batch_size=bs, steps_per_epoch=spe, val_batches=val_batches, epochs=epochs, warmup_epochs=warm,
                step_s=t_arch, step_s_weights_only=t_w, val_batch_s=t_val, step_s_per_image=t_arch / max(n_img, 1),
                activation_bytes_per_image=act, state_bytes=state, memory_bytes=state + act * bs,
                available_bytes=available, max_batch=max_batch, wall_s=wall, measured_steps=steps,
                first_step_s=first)


def _mib(b: float) -> str:
    return f"{b / 2**20:,.1f} MiB" if b < 2**30 else f"{b / 2**30:,.2f} GiB"


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def format_plan(p: Plan) -> str:
    pr = p.precision
    lines = [
        f"device          {p.device} (amp {pr['amp']}, channels_last {pr['channels_last']}, compile {pr['compile']})",
        f"supernet        {p.params_weights:,} weights, {p.params_arch:,} architecture parameters",
        f"activations     {_mib(p.activation_bytes_per_image)} per image (saved for backward, one forward)",
        f"step            {p.step_s * 1000:.1f} ms with the architecture update"
        + (f", {p.step_s_weights_only * 1000:.1f} ms weights only (warm-up)" if p.warmup_epochs else "")
        + f"; {p.step_s_per_image * 1000:.1f} ms per image (median of {p.measured_steps} steps at batch {p.batch_size})",
        f"validation      {p.val_batch_s * 1000:.1f} ms per batch, {p.val_batches} batches per epoch",
        f"search          {p.epochs} epochs x {p.steps_per_epoch} steps ({p.warmup_epochs} warm-up): "
        f"about {_duration(p.wall_s)}",
        f"memory          about {_mib(p.memory_bytes)} at batch {p.batch_size} "
        f"({_mib(p.state_bytes)} weights and optimiser state + activations); {_mib(p.available_bytes)} available",
        f"largest batch   {p.max_batch} fits the available memory",
    ]
    if pr["compile"]:
        lines.insert(4, f"compile         first step {_duration(p.first_step_s)} (torch.compile, once per run; in the "
                        "search estimate below)")
    return "\n".join(lines)
