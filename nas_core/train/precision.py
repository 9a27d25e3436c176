"""How the supernet and the retrained network compute on a device: bfloat16 autocast, channels_last, torch.compile.

One `Precision` per run, resolved from the experiment's `compute:` section and the device. The forward pass runs
under autocast; the loss, alpha, beta and their softmax stay float32 (alpha is a float32 parameter and softmax is
on autocast's float32 list, so the mixing weights and the weighted sum over ops are float32 too), and the DARTS
central difference runs with autocast off (`float32()`): its perturbation eps * v is ~1e-3 of the weights,
below bfloat16's resolution (2^-8), so under autocast both sides would round to the same weights.

`compile` applies to the weight step only (`loss(..., compiled=True)`): the architecture step (its unrolled
weights, finite differences and hypergradients) and validation run the same model eagerly: the finite
differences' autocast-off forwards and eval-mode BatchNorm would each be another graph to compile.
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

AMP_DTYPES = {"bf16": torch.bfloat16}
COMPILE_BACKEND = "inductor"  # what `compute.compile` runs; tests name another only to see where it applies
# On CPU with oneDNN, inductor turns every convolution's tensors channels_last ("layout optimisation"), which
# reaches the oneDNN channels_last weight-gradient bug that `resolve_precision` refuses for channels_last: the
# compiled supernet step aborted with "double free or corruption" in convolution_backward (torch 2.13 CPU,
# reproduced twice). Inductor keeps the eager layouts without it.
_CPU_INDUCTOR_OPTIONS = {"layout_optimization": False}
_FLOAT32 = contextvars.ContextVar("nasforge_float32", default=False)  # inside `float32()`: no autocast at all


@dataclass(frozen=True)
class Precision:
    """The resolved switches: `amp` is the autocast dtype or None (float32)."""

    device_type: str = "cpu"
    amp: torch.dtype | None = None
    channels_last: bool = False
    compile: bool = False

    @property
    def is_plain(self) -> bool:
        return self.amp is None and not self.channels_last and not self.compile

    def describe(self) -> dict[str, Any]:
        return {"amp": "bf16" if self.amp is torch.bfloat16 else "off", "channels_last": self.channels_last,
                "compile": self.compile, "device": self.device_type}

    def autocast(self):
        if self.amp is None or _FLOAT32.get():
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.amp)

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move the 4-d weights to channels_last (in place); alpha and beta are 2-d and stay as they are."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def wrap(self, model: nn.Module, compiled: bool = False) -> nn.Module:
        """`model` as this precision runs it: same parameters, float32 outputs. The plain case is `model` itself.
        `compiled`: the weight step's forward, torch.compile'd when `compile` is on (eager otherwise)."""
        compiled = compiled and self.compile
        if self.amp is None and not self.channels_last and not compiled:
            return model
        cache = model.__dict__.setdefault("_nasforge_precise", {})
        if (self, compiled) not in cache:
            cache[self, compiled] = _Precise(model, self, compiled)
        return cache[self, compiled]

    def loss(self, loss_fn: Callable, compiled: bool = False) -> Callable:
        """A loss function `loss_fn(model, batch, **kw)` whose model runs at this precision (the loss in float32);
        `compiled=True` for the weight step, the one place `compile` applies."""
        if self.amp is None and not self.channels_last and not (compiled and self.compile):
            return loss_fn

        def precise_loss(model, batch, **kw):
            return loss_fn(self.wrap(model, compiled), batch, **kw)

        return precise_loss


class _Precise(nn.Module):
    """Runs the model under autocast on channels_last inputs, optionally compiled; hands back float32 outputs so
    the loss (cross-entropy, Dice) is computed in float32 outside autocast."""

    def __init__(self, model: nn.Module, precision: Precision, compiled: bool = False):
        super().__init__()
        self.inner = model
        self.precision = precision
        # torch.compile traces on the first call, once per model (minutes on a CPU: docs/benchmarks.md).
        options = _CPU_INDUCTOR_OPTIONS if precision.device_type == "cpu" and COMPILE_BACKEND == "inductor" else None
        self._compiled = torch.compile(model, backend=COMPILE_BACKEND, options=options) if compiled else None

    def forward(self, x: torch.Tensor, *args, **kwargs):
        if self.precision.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        run = self._compiled if self._compiled is not None else self.inner
        with self.precision.autocast():
            out = run(x, *args, **kwargs)
        return _float(out)


def _float(out):
    if isinstance(out, (tuple, list)):
        return type(out)(_float(o) for o in out)
    return out.float() if torch.is_tensor(out) and out.is_floating_point() else out


@contextlib.contextmanager
def float32():
    """Autocast off for the block, whatever device enabled it and inside `Precision.autocast()` too (used by the
    DARTS finite difference, whose loss calls run the wrapped model)."""
    token = _FLOAT32.set(True)
    with contextlib.ExitStack() as stack:
        stack.callback(_FLOAT32.reset, token)
        for device_type in ("cpu", "cuda"):
            if torch.is_autocast_enabled(device_type):
                stack.enter_context(torch.autocast(device_type, enabled=False))
        yield


def resolve_precision(compute_cfg, device: str | torch.device) -> Precision:
    """The switches `compute:` asks for on `device`. `auto` is off on CPU and on on CUDA; the CUDA default awaits
    a GPU measurement (bench/gpu.sh), docs/search.md says so."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    if compute_cfg is None:
        return Precision(device.type)
    amp = compute_cfg.amp
    amp = ("bf16" if cuda else "off") if amp == "auto" else amp
    cl = compute_cfg.channels_last
    cl = cuda if cl == "auto" else cl == "on"
    if cl and device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled:
        # Seen here: oneDNN's convolution weight gradient on the supernet's channels_last tensors aborts the process
        # ("double free or corruption") in torch 2.13 CPU with one thread; the native kernels are fine.
        raise ValueError("compute.channels_last: on is for CUDA; on CPU, oneDNN's channels_last convolution backward "
                         "corrupts memory in this torch (2.13); set compute.channels_last: auto or off, or turn oneDNN "
                         "off (torch.backends.mkldnn.enabled = False) to run it anyway")
    if amp == "bf16" and device.type not in ("cpu", "cuda"):
        raise ValueError(f"compute.amp: bf16 autocast runs on cpu or cuda, not {device.type}; set compute.amp: off")
    return Precision(device.type, AMP_DTYPES.get(amp), bool(cl), bool(compute_cfg.compile))
