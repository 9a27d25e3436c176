"""Whole-space validation beyond the schema's graph rules: known ops, their parameters, and shapes at every
stride a cell type uses (a dry run on a tiny tensor), with messages naming the cell, op and edge."""
from __future__ import annotations

import torch

from nas_core.space.cell import CellGraph, SpaceError, edge_stride
from nas_core.space.config import SpaceConfig
from nas_core.space.ops import OPS, UP, op_spec, register_user_ops

ROLES = {"normal": "normal", "down": "down", "up": "up", "reduce": "down"}


def cell_role(cell_type: str) -> str:
    return ROLES[cell_type]


def validate_space(space: SpaceConfig) -> dict[str, CellGraph]:
    """Register the space's allow-listed user ops, check every op at every stride it meets; return the graphs."""
    try:
        register_user_ops(space.user_ops)
    except ValueError as exc:
        raise SpaceError(f"space.{exc}") from None
    for name in space.op_params:
        try:
            op_spec(name)
        except ValueError:
            raise SpaceError(f"space.op_params.{name}: no op named {name!r}; remove it or fix the name") from None
    graphs = {}
    for t, cfg in space.cells.items():
        graph = CellGraph.from_config(cfg)
        graphs[t] = graph
        strides: dict[int, tuple[int, int]] = {}
        for i, j in graph.edges:
            strides.setdefault(edge_stride(cell_role(t), i), (i, j))
        for op in cfg.ops:
            try:
                op_spec(op)
            except ValueError as exc:
                raise SpaceError(f"space.cells.{t}.ops: {exc}; or register it in user_ops with an allow-listed module") from None
            for s, (i, j) in strides.items():
                _dry_run(op, s, space.op_params.get(op, {}), f"space.cells.{t}: op {op!r} on edge ({i}, {j})")
    return graphs


def _dry_run(op: str, stride: int, params: dict, where: str) -> None:
    C, H = 4, 8
    try:
        module = OPS[op](C, stride, False, **params)
        with torch.no_grad():
            y = module.eval()(torch.randn(1, C, H, H))
    except (ValueError, RuntimeError, TypeError) as exc:
        raise SpaceError(f"{where} (stride {stride}): {exc}; fix space.op_params.{op} or remove the op from this cell") from None
    h = {1: H, 2: H // 2, UP: 2 * H}[stride]
    if tuple(y.shape) != (1, C, h, h):
        raise SpaceError(
            f"{where} (stride {stride}): maps {C}x{H}x{H} to {'x'.join(map(str, y.shape[1:]))}, expected {C}x{h}x{h}; "
            f"fix space.op_params.{op} (odd kernel, matching padding) or remove the op from this cell"
        )
