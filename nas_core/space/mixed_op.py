"""The supernet's MixedOps, computed per source node: all edges leaving one node share its input, so they are
evaluated together. Pools and identity are computed once for all of them; convolutions of several edges run as
one grouped convolution; `none` is skipped (it adds exactly zero). Each edge's weights can still be read out as
the state dict of the stand-alone op (`edge_state_dict`), which is how a discrete network inherits them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas_core.space.ops import OPS, UP, op_spec

# Ops with a batched form: the keys of the stand-alone op's state dict that hold per-edge parameters, and the
# BatchNorm prefixes; see _Batched.
_SEP = ({"op.1.weight": "dw1", "op.2.weight": "pw1", "op.5.weight": "dw2", "op.6.weight": "pw2"}, {"op.3": "bn1", "op.7": "bn2"})
_DIL = ({"op.1.weight": "dw1", "op.2.weight": "pw1"}, {"op.3": "bn1"})
_CONV = ({"op.1.weight": "w"}, {"op.2": "bn1"})
_FR = ({"conv_1.weight": "w1", "conv_2.weight": "w2"}, {"bn": "bn1"})


def _batched_kind(op: str, stride: int) -> str | None:
    if op.startswith("sep_conv_"):
        return "sep"
    if op.startswith("dil_conv_"):
        return "dil"
    if op == "conv_3x3":
        return "conv"
    if op == "skip_connect" and stride == 2:
        return "fr"
    return None


def _offsets(k: int) -> list[int]:
    return sorted(set(range(0, k - 2, 2)) | {k - 3})


class _LargeDepthwise(torch.autograd.Function):
    """Depthwise k x k conv (k > 3, dilation 1) whose weight gradient is assembled from 3x3 weight gradients on
    shifted inputs: the same numbers, and the CPU backend computes 3x3 depthwise weight gradients ~20x faster."""

    @staticmethod
    def forward(ctx, x, w, stride: int, padding: int):
        ctx.save_for_backward(x, w)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, w, None, stride, padding, 1, x.shape[1])

    @staticmethod
    def backward(ctx, go):
        x0, w0 = ctx.saved_tensors
        # Under autocast the forward conv ran in go's dtype (bfloat16); the gradients are computed in it too and
        # handed back in the dtypes of x and w (a no-op in float32).
        x, w = x0.to(go.dtype), w0.to(go.dtype)
        s, p, C, k = ctx.stride, ctx.padding, x.shape[1], w.shape[-1]
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = torch.ops.aten.convolution_backward(go, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], C,
                                                     [True, False, False])[0].to(x0.dtype)
        if ctx.needs_input_grad[1]:
            xp = F.pad(x, (p, p, p, p))
            lh, lw = (go.shape[-2] - 1) * s + 3, (go.shape[-1] - 1) * s + 3
            w3 = w.new_empty(C, 1, 3, 3)
            gw = w0.new_empty(w0.shape)
            for a in _offsets(k):
                for b in _offsets(k):
                    # Weight entries (a..a+2, b..b+2) see the input shifted by (a, b): a 3x3 conv's weight gradient.
                    gw[:, :, a:a + 3, b:b + 3] = torch.ops.aten.convolution_backward(
                        go, xp[:, :, a:a + lh, b:b + lw], w3, None, [s, s], [0, 0], [1, 1], False, [0, 0], C,
                        [False, True, False])[1]
        return gx, gw, None, None


def _depthwise(x: torch.Tensor, w: torch.Tensor, stride, padding, dilation, groups: int) -> torch.Tensor:
    """Depthwise conv; a dilation-2 "same" conv runs undilated on the input's 2x2 phases (space-to-batch, as
    atrous convolution is often computed): the same numbers, while CPU backends' dilated backward is slow."""
    k = w.shape[-1]
    if x.is_cuda:  # the rewrites below answer CPU backends' slow paths; cuDNN has its own
        return F.conv2d(x, w, None, stride, padding, dilation, groups)
    if _square(dilation) == 2 and _square(padding) == k - 1 and x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0:
        p = (k - 1) // 2
        if _square(stride) == 2:
            # Output pixel i reads inputs 2i + 2u - (k-1): all of phase (0, 0).
            return _plain_depthwise(x[:, :, ::2, ::2], w, 1, p, 1, groups)
        if _square(stride) == 1:
            n, c, h, wd = x.shape
            xs = x.view(n, c, h // 2, 2, wd // 2, 2).permute(0, 3, 5, 1, 2, 4).reshape(n * 4, c, h // 2, wd // 2)
            y = _plain_depthwise(xs, w, 1, p, 1, groups)
            return y.view(n, 2, 2, c, h // 2, wd // 2).permute(0, 3, 4, 1, 5, 2).reshape(n, c, h, wd)
    return _plain_depthwise(x, w, stride, padding, dilation, groups)


def _plain_depthwise(x, w, stride, padding, dilation, groups):
    k = w.shape[-1]
    s, p, d = _square(stride), _square(padding), _square(dilation)
    # Stride 1 only: at stride 2 the plain backward was as fast in measurements.
    if k > 3 and d == 1 and s == 1 and p is not None and w.shape[-2] == k and x.shape[1] == groups:
        return _LargeDepthwise.apply(x, w, s, p)
    return F.conv2d(x, w, None, stride, padding, dilation, groups)


def _square(v) -> int | None:
    v = (v, v) if isinstance(v, int) else tuple(v)
    return v[0] if v[0] == v[1] else None


def _pointwise(y: torch.Tensor, w: torch.Tensor, E: int) -> torch.Tensor:
    """E per-edge 1x1 convs (a grouped conv, groups=E) as one batched matmul: the same sums, and CPU backends
    run a grouped 1x1 conv group by group (2-3x slower at these sizes)."""
    n, _, h, wd = y.shape
    c_out, c_in = w.shape[0] // E, w.shape[1]
    return torch.matmul(w.view(E, c_out, c_in), y.reshape(n, E, c_in, h * wd)).view(n, E * c_out, h, wd)


class _Batched(nn.Module):
    """E copies of one op as one module: per-edge tensors concatenated along the output channels."""

    def __init__(self, kind: str, protos: list[nn.Module]):
        super().__init__()
        self.kind, self.E = kind, len(protos)
        self._params, self._bns = {"sep": _SEP, "dil": _DIL, "conv": _CONV, "fr": _FR}[kind]
        sds = [p.state_dict() for p in protos]
        for key, name in self._params.items():
            self.register_parameter(name, nn.Parameter(torch.cat([sd[key] for sd in sds]).clone()))
        for prefix, name in self._bns.items():
            setattr(self, name, nn.BatchNorm2d(self.E * sds[0][prefix + ".running_mean"].numel(), affine=False))
        # Convolution geometry from the prototype (kernel, stride, padding, dilation).
        first = protos[0]
        if kind in ("sep", "dil", "conv"):
            conv = first.op[1]
            self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation

    def forward(self, r: torch.Tensor, r_rep: torch.Tensor | None = None) -> torch.Tensor:
        """r: the ReLU'd input (N, C, H, W), shared by every op that starts with a ReLU; r_rep: r repeated E times
        along the channels (depthwise convs of all edges in one call), shared too."""
        E, n = self.E, r.shape[0]
        if self.kind in ("sep", "dil"):
            EC = self.dw1.shape[0]
            if r_rep is None:
                r_rep = r.repeat(1, E, 1, 1)
            y = _depthwise(r_rep, self.dw1, self.stride, self.padding, self.dilation, EC)
            y = self.bn1(_pointwise(y, self.pw1, E))
            if self.kind == "sep":
                y = _depthwise(F.relu(y), self.dw2, 1, self.padding, 1, EC)
                y = self.bn2(_pointwise(y, self.pw2, E))
        elif self.kind == "conv":
            y = self.bn1(F.conv2d(r, self.w, None, self.stride, self.padding, self.dilation))
        else:
            y1 = F.conv2d(r, self.w1, None, 2)
            y2 = F.conv2d(r[:, :, 1:, 1:], self.w2, None, 2)
            h, w = y1.shape[-2:]
            y = torch.cat([y1.reshape(n, E, -1, h, w), y2.reshape(n, E, -1, h, w)], 2).reshape(n, -1, h, w)
            y = self.bn1(y)
        return y.reshape(n, E, -1, *y.shape[-2:])

    def edge_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        out = {}
        for key, name in self._params.items():
            t = getattr(self, name)
            rows = t.shape[0] // self.E
            out[key] = t[k * rows:(k + 1) * rows]
        for prefix, name in self._bns.items():
            bn = getattr(self, name)
            rows = bn.running_mean.numel() // self.E
            out[prefix + ".running_mean"] = bn.running_mean[k * rows:(k + 1) * rows]
            out[prefix + ".running_var"] = bn.running_var[k * rows:(k + 1) * rows]
            out[prefix + ".num_batches_tracked"] = bn.num_batches_tracked
        return out


def channel_shuffle(x: torch.Tensor, groups: int, dim: int = 1) -> torch.Tensor:
    """PC-DARTS's shuffle: interleave the `groups` channel blocks so that the next edge sees other channels."""
    shape = x.shape
    c = shape[dim]
    x = x.reshape(*shape[:dim], groups, c // groups, *shape[dim + 1:]).transpose(dim, dim + 1)
    return x.reshape(shape)


class EdgeGroup(nn.Module):
    """The MixedOps of the E edges leaving one node: forward(x, w[E, ops], beta[E] or None) -> (N, E, C, H', W')."""

    def __init__(self, ops: list[str], C: int, stride: int, n_edges: int, op_params: dict, pc_k: int = 1,
                 batch: bool = True, aux_skip: bool = False):
        super().__init__()
        self.ops, self.C, self.stride, self.E, self.pc_k = list(ops), C, stride, n_edges, pc_k
        self.Cp = C // pc_k
        self.kinds: dict[str, str] = {}
        self.shared, self.batched, self.each = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict()
        self._interp: dict[str, bool] = {}
        for op in self.ops:
            if op == "none":
                self.kinds[op] = "none"
                continue
            spec, params = op_spec(op), dict(op_params.get(op, {}))
            interp = stride == UP and spec.up == "interp"
            s = 1 if interp else stride  # interp ops run at stride 1 on the (shared) upsampled input
            self._interp[op] = interp
            kind = _batched_kind(op, s)
            if spec.pool or (op == "skip_connect" and s == 1):
                # Same input, no parameters: one result serves every edge (the BN after a pool sees identical
                # batches on every edge, so one BN is the same as E).
                m = OPS[op](self.Cp, s, False, **params)
                self.shared[op] = nn.Sequential(m, nn.BatchNorm2d(self.Cp, affine=False)) if spec.pool else m
                self.kinds[op] = "shared"
            elif kind is not None and batch:
                self.batched[op] = _Batched(kind, [OPS[op](self.Cp, s, False, **params) for _ in range(n_edges)])
                self.kinds[op] = "batched"
            else:
                self.each[op] = nn.ModuleList(OPS[op](self.Cp, stride, False, **params) for _ in range(n_edges))
                self.kinds[op] = "each"
        self._needs_up = any(self._interp.get(op) and k in ("shared", "batched") for op, k in self.kinds.items())
        # DARTS-'s auxiliary skip, outside alpha: identity (upsampling on an up edge) shared by the edges, or a
        # FactorizedReduce of each edge's own on a down edge, as skip_connect itself is built.
        self.aux_weight = 0.0
        self.aux = None
        if aux_skip:
            self.aux = (nn.ModuleList(OPS["skip_connect"](self.Cp, 2, False) for _ in range(n_edges)) if stride == 2
                        else OPS["skip_connect"](self.Cp, stride, False))

    def forward(self, x: torch.Tensor, w: torch.Tensor, beta: torch.Tensor | None = None) -> torch.Tensor:
        E = self.E
        xp = x[:, : self.Cp] if self.pc_k > 1 else x
        x_up = F.interpolate(xp, scale_factor=2, mode="bilinear", align_corners=False) if self._needs_up else None
        relu = {}
        acc = None
        for col, op in enumerate(self.ops):
            kind = self.kinds[op]
            if kind == "none":
                continue
            xin = x_up if self._interp.get(op) and kind != "each" else xp
            if kind == "shared":
                y = self.shared[op](xin).unsqueeze(1)
            elif kind == "batched":
                key = id(xin)
                if key not in relu:
                    relu[key] = F.relu(xin)
                m = self.batched[op]
                if m.kind in ("sep", "dil"):
                    if ("rep", key) not in relu:
                        relu["rep", key] = relu[key].repeat(1, E, 1, 1)
                    y = m(relu[key], relu["rep", key])
                else:
                    y = m(relu[key])
            else:
                y = torch.stack([m(xin) for m in self.each[op]], 1)
            wcol = w[:, col].view(1, E, 1, 1, 1)
            acc = y * wcol if acc is None else torch.addcmul(acc, y, wcol)
        if self.aux is not None and self.aux_weight != 0:
            y = (torch.stack([m(xp) for m in self.aux], 1) if isinstance(self.aux, nn.ModuleList)
                 else self.aux(xp).unsqueeze(1))
            acc = acc + self.aux_weight * y
        if self.pc_k > 1:
            rest = x[:, self.Cp:]
            if self.stride == 2:
                rest = F.max_pool2d(rest, 2, 2)
            elif self.stride == UP:
                rest = F.interpolate(rest, scale_factor=2, mode="bilinear", align_corners=False)
            n, _, h, wd = rest.shape
            acc = torch.cat([acc.expand(n, E, -1, h, wd), rest.unsqueeze(1).expand(n, E, -1, h, wd)], 2)
            acc = channel_shuffle(acc, self.pc_k, dim=2)
        if beta is not None:
            acc = acc * beta.view(1, E, 1, 1, 1)
        return acc

    def edge_state_dict(self, op: str, k: int) -> dict[str, torch.Tensor]:
        """Edge k's weights for `op`, keyed as the stand-alone OPS[op](C, stride, affine) module's state dict."""
        kind = self.kinds[op]
        if kind in ("none", "shared"):
            return {}
        if kind == "each":
            return dict(self.each[op][k].state_dict())
        sd = self.batched[op].edge_state_dict(k)
        return {("op." + key if self._interp[op] else key): v for key, v in sd.items()}
