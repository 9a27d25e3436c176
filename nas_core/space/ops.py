"""The operation registry: `OPS` (name -> constructor) and `OP_DEFAULTS` (name -> default parameters).

A constructor is called `OPS[name](C, stride, affine, **params)`: C channels in and out, stride 1 (same scale),
2 (halve) or -2 (double). DARTS's ops keep DARTS's exact definitions. On a doubling edge an op without its own
upsampling form is applied after a bilinear x2 upsample ("interp"); transposed convolutions upsample natively.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

UP = -2
STRIDES = (1, 2, UP)


class Zero(nn.Module):
    """The `none` op: zeros of the output shape (kept so that the supernet's alpha has a column for it)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        if self.stride == UP:
            n, c, h, w = x.shape
            return x.new_zeros(n, c, 2 * h, 2 * w)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Upsample2x(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class Interp(nn.Module):
    """An op on a doubling edge: bilinear x2 upsample, then the op at stride 1."""

    def __init__(self, op: nn.Module):
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))


class ReLUConvBN(nn.Module):
    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True, dilation: int = 1):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU, depthwise (dilated) conv, pointwise conv, BN: applied once."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, dilation: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """ReLU, depthwise conv, pointwise conv, BN, applied twice (stride only in the first)."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride, padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_in, 1, bias=False),
            nn.BatchNorm2d(C_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, 1, padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """Halves the resolution with two offset stride-2 1x1 convs whose outputs are concatenated."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count, got {C_out}; use an even `channels`")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class TransConv(nn.Module):
    """ReLU, (depthwise) transposed conv doubling the resolution, [pointwise conv], BN; a plain conv at stride 1."""

    def __init__(self, C: int, kernel_size: int, stride: int, dilation: int, depthwise: bool, affine: bool = True):
        super().__init__()
        groups = C if depthwise else 1
        pad = dilation * (kernel_size - 1) // 2
        if stride == UP:
            # Output 2H: (H-1)*2 - 2p + d(k-1) + output_padding + 1 = 2H with output_padding 1.
            conv = nn.ConvTranspose2d(C, C, kernel_size, stride=2, padding=pad, output_padding=1,
                                      dilation=dilation, groups=groups, bias=False)
        elif stride == 1:
            conv = nn.Conv2d(C, C, kernel_size, 1, pad, dilation=dilation, groups=groups, bias=False)
        else:
            raise ValueError("a transposed conv upsamples; it has no stride-2 form")
        layers = [nn.ReLU(inplace=False), conv]
        if depthwise:
            layers.append(nn.Conv2d(C, C, 1, bias=False))
        layers.append(nn.BatchNorm2d(C, affine=affine))
        self.op = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def _pad(k: int, d: int = 1) -> int:
    return d * (int(k) - 1) // 2


def _check_kernel(name: str, k: int) -> int:
    if int(k) < 1 or int(k) % 2 == 0:
        raise ValueError(f"op_params.{name}.kernel_size must be odd and positive (keeps the shape), got {k}")
    return int(k)


@dataclass(frozen=True)
class OpSpec:
    """How an op is built: constructor at stride 1 or 2, default parameters, upsampling form, strides allowed."""

    build: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    up: str = "interp"  # "interp": upsample then the stride-1 op; "native": build(C, -2, ...) upsamples itself
    strides: tuple[int, ...] = STRIDES
    pool: bool = False  # parameter-free pooling: the supernet follows it with an affine-free BN


_SPECS: dict[str, OpSpec] = {}
OPS: dict[str, Callable[..., nn.Module]] = {}
OP_DEFAULTS: dict[str, dict[str, Any]] = {}


def _construct(name: str, C: int, stride: int, affine: bool = True, **params: Any) -> nn.Module:
    spec = _SPECS[name]
    if stride not in spec.strides:
        allowed = ", ".join({1: "1 (same scale)", 2: "2 (down)", UP: "-2 (up)"}[s] for s in spec.strides)
        raise ValueError(f"op {name!r} has no stride {stride} form; it supports strides {allowed}")
    unknown = set(params) - set(spec.defaults)
    if unknown:
        raise ValueError(
            f"op_params.{name}: unknown parameter {sorted(unknown)[0]!r}; "
            f"{name} takes {', '.join(spec.defaults) or 'no parameters'}"
        )
    p = {**spec.defaults, **params}
    if stride == UP and spec.up == "interp":
        return Interp(spec.build(C, 1, affine, **p))
    return spec.build(C, stride, affine, **p)


def register_op(name: str, defaults: dict[str, Any] | None = None, *, up: str = "interp",
                strides: tuple[int, ...] = STRIDES, pool: bool = False, replace: bool = False):
    """Decorator adding `build(C, stride, affine, **params) -> nn.Module` to OPS under `name` (server-side code)."""

    def deco(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _SPECS and not replace:
            raise ValueError(f"op {name!r} is already registered; pick another name")
        _SPECS[name] = OpSpec(build, dict(defaults or {}), up, tuple(strides), pool)
        OPS[name] = lambda C, stride, affine=True, **params: _construct(name, C, stride, affine, **params)
        OP_DEFAULTS[name] = dict(defaults or {})
        return build

    return deco


def op_spec(name: str) -> OpSpec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"unknown op {name!r}; known ops: {', '.join(sorted(_SPECS))}") from None


# ---- DARTS ----------------------------------------------------------------------------------------------------

register_op("none", up="native")(lambda C, stride, affine: Zero(stride))
register_op("avg_pool_3x3", {"kernel_size": 3}, pool=True)(
    lambda C, stride, affine, kernel_size: nn.AvgPool2d(_check_kernel("avg_pool_3x3", kernel_size), stride=stride,
                                                        padding=_pad(kernel_size), count_include_pad=False)
)
register_op("max_pool_3x3", {"kernel_size": 3}, pool=True)(
    lambda C, stride, affine, kernel_size: nn.MaxPool2d(_check_kernel("max_pool_3x3", kernel_size), stride=stride,
                                                        padding=_pad(kernel_size))
)
register_op("skip_connect")(lambda C, stride, affine: nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine))
for _k in (3, 5, 7):
    register_op(f"sep_conv_{_k}x{_k}", {"kernel_size": _k})(
        lambda C, stride, affine, kernel_size, _n=f"sep_conv_{_k}x{_k}": SepConv(
            C, C, _check_kernel(_n, kernel_size), stride, _pad(kernel_size), affine)
    )
for _k in (3, 5):
    register_op(f"dil_conv_{_k}x{_k}", {"kernel_size": _k, "dilation": 2})(
        lambda C, stride, affine, kernel_size, dilation, _n=f"dil_conv_{_k}x{_k}": DilConv(
            C, C, _check_kernel(_n, kernel_size), stride, _pad(kernel_size, dilation), int(dilation), affine)
    )

# ---- U-Net sampling ops (in the spirit of NAS-Unet's down/up cells) --------------------------------------------

# A plain conv: strided on down edges, bilinear upsample + conv on up edges.
register_op("conv_3x3", {"kernel_size": 3, "dilation": 1})(
    lambda C, stride, affine, kernel_size, dilation: ReLUConvBN(
        C, C, _check_kernel("conv_3x3", kernel_size), stride, _pad(kernel_size, dilation), affine, int(dilation))
)
for _name, _dw, _dil in (("trans_conv_3x3", False, 1), ("sep_trans_conv_3x3", True, 1), ("dil_trans_conv_3x3", True, 2)):
    register_op(_name, {"kernel_size": 3, "dilation": _dil}, up="native", strides=(1, UP))(
        lambda C, stride, affine, kernel_size, dilation, _n=_name, _d=_dw: TransConv(
            C, _check_kernel(_n, kernel_size), stride, int(dilation), _d, affine)
    )

# Suggested op sets for U-Net cells (the default space uses the DARTS set everywhere).
UNET_DOWN_OPS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "conv_3x3", "sep_conv_3x3", "dil_conv_3x3"]
UNET_UP_OPS = ["none", "skip_connect", "trans_conv_3x3", "sep_trans_conv_3x3", "dil_trans_conv_3x3", "conv_3x3", "sep_conv_3x3"]


# ---- user ops, allow-listed ------------------------------------------------------------------------------------

_ALLOWED_MODULES: set[str] = set()
_USER_REFS: dict[str, str] = {}


def allow_op_module(module: str) -> None:
    """Server-side: allow user ops from `module` (and its submodules)."""
    _ALLOWED_MODULES.add(module)


def allowed_op_modules() -> set[str]:
    env = {m.strip() for m in os.environ.get("NASFORGE_OP_MODULES", "").split(",") if m.strip()}
    return _ALLOWED_MODULES | env


def _is_allowed(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in allowed_op_modules())


def register_user_ops(user_ops: dict[str, str]) -> None:
    """Register the space's `user_ops` ('module:callable'), refusing any module not on the allow-list
    *before* importing it: an experiment form must never be a way to run arbitrary code."""
    for name, ref in user_ops.items():
        module, _, attr = ref.partition(":")
        if not _is_allowed(module):
            allowed = ", ".join(sorted(allowed_op_modules())) or "none"
            raise ValueError(
                f"user_ops.{name}: module {module!r} is not on the server's allow-list (allowed: {allowed}); "
                "an administrator adds it to NASFORGE_OP_MODULES"
            )
        if name in _SPECS:
            if _USER_REFS.get(name) == ref:
                continue
            raise ValueError(f"user_ops.{name}: an op named {name!r} already exists; give the user op another name")
        try:
            build = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"user_ops.{name}: cannot load {ref!r} ({exc})") from None
        if not callable(build):
            raise ValueError(f"user_ops.{name}: {ref!r} is not callable; it must be build(C, stride, affine, **params)")
        defaults = dict(getattr(build, "defaults", {}))
        register_op(name, defaults, up=getattr(build, "up", "interp"), strides=tuple(getattr(build, "strides", STRIDES)))(build)
        _USER_REFS[name] = ref
