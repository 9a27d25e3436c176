"""What a search tells the world: the payloads of its alpha, genotype and progress events, and the event sink
that writes them exactly once across a kill and resume, with a heartbeat thread for the watcher."""
from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any

import torch

from nas_core.events import HEARTBEAT_S, EventKind, EventLog, read_events

# Events that are history (one per epoch or step): after a resume they are written once, never again.
_HISTORY = (EventKind.alpha, EventKind.metric, EventKind.genotype, EventKind.progress)


def is_param_free(op: str) -> bool:
    """Skip, pools and none carry no weights (DARTS's reading; a strided skip's FactorizedReduce still counts)."""
    if op == "none" or op.startswith("skip"):
        return True
    try:
        from nas_core.space.ops import op_spec

        return bool(op_spec(op).pool)
    except (ImportError, ValueError):
        return "pool" in op


def entropy(rows: torch.Tensor) -> list[float]:
    """Shannon entropy (nats) of each row of a weight matrix whose rows sum to one."""
    p = rows.detach().double().clamp_min(0)
    p = p / p.sum(-1, keepdim=True).clamp_min(1e-300)
    return (-(p * torch.log(p.clamp_min(1e-300))).sum(-1)).tolist()


def param_free_share(genotype_dict: dict[str, Any]) -> dict[str, float]:
    """Per cell type, the share of the decoded cell's edges whose op is parameter-free."""
    out = {}
    for cell, c in genotype_dict["cells"].items():
        ops = [pair[0] for node in c["nodes"] for pair in node]
        out[cell] = sum(is_param_free(op) for op in ops) / len(ops) if ops else 0.0
    return out


def param_free_counts(genotype_dict: dict[str, Any]) -> dict[str, int]:
    """Per cell type, how many of the decoded cell's edges carry a parameter-free op."""
    return {cell: sum(is_param_free(pair[0]) for node in c["nodes"] for pair in node)
            for cell, c in genotype_dict["cells"].items()}


def collapse_alarm(genotype_dict: dict[str, Any], at: int) -> dict[str, Any] | None:
    """DARTS+'s stopping rule, on every cell type: the first cell whose decoded genotype has `at` or more
    parameter-free ops (DARTS+ stops at two skip connections in the normal cell), or None."""
    for cell, n in param_free_counts(genotype_dict).items():
        if n >= at:
            return {"reason": "collapse", "cell": cell, "param_free": n, "threshold": at}
    return None


def epoch_summary(supernet, metric: dict[str, Any], epochs: int, seconds: float) -> str:
    """The search's one log line per epoch: losses, validation IoU, and how far alpha has left uniform."""
    ent, top, uniform = [], [], []
    for alpha, _ in cell_weights(supernet).values():
        ent += entropy(alpha)
        top += alpha.detach().double().amax(-1).tolist()
        uniform += [math.log(alpha.shape[-1])] * alpha.shape[0]
    top.sort()
    iou = metric.get("val_iou")
    fg = (metric.get("val_iou_per_class") or [None, None])[1:]
    fg = [x for x in fg if x is not None]
    arch = "" if metric.get("arch_updates", True) else " (warm-up: alpha fixed)"
    return (f"search epoch {metric['epoch'] + 1}/{epochs}: train loss {metric['train_loss']:.4f}, val loss "
            f"{metric['val_loss']:.4f}, val mIoU {_fmt(iou)}, foreground IoU {_fmt(sum(fg) / len(fg) if fg else None)}; "
            f"alpha entropy {sum(ent) / len(ent):.3f} (uniform {sum(uniform) / len(uniform):.3f}), top op weight "
            f"median {top[len(top) // 2]:.3f}, max {top[-1]:.3f}{arch}; {seconds:.1f} s")


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _rows(x: Any) -> list:
    return x.detach().double().cpu().tolist() if isinstance(x, torch.Tensor) else x


def alpha_payload(supernet, epoch: int, step: int, genotype_dict: dict[str, Any]) -> dict[str, Any]:
    """Per cell type the weights actually used (edges x ops), beta, names and per-edge entropy."""
    cells = {}
    for cell, (alpha, beta) in cell_weights(supernet).items():
        cells[cell] = {
            "alpha": _rows(alpha), "beta": None if beta is None else _rows(beta),
            "edges": [str(e) for e in supernet.edge_names(cell)], "ops": list(supernet.op_names(cell)),
            "entropy": entropy(alpha),
        }
    return {"epoch": epoch, "step": step, "cells": cells, "param_free_share": param_free_share(genotype_dict)}


def cell_weights(supernet) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """{cell type: (alpha as used, beta as used or None)}: `arch_weights()` per cell (a tensor, an (alpha, beta)
    pair or a {"alpha", "beta"} mapping), beta from `normalized_betas()` (softmax over each node's inputs)."""
    betas = supernet.normalized_betas() if getattr(supernet, "edge_norm", False) else {}
    out = {}
    for cell, w in supernet.arch_weights().items():
        if isinstance(w, dict):
            out[cell] = (w["alpha"], w.get("beta"))
        elif isinstance(w, (tuple, list)):
            out[cell] = (w[0], w[1] if len(w) > 1 else None)
        else:
            out[cell] = (w, betas.get(cell))
    return out


def progress_payload(stage: str, epoch: int, epochs: int, fraction: float, started: float,
                     done_at_start: float) -> dict[str, Any]:
    """Fraction of the stage done and the ETA, extrapolated from the pace since this process started."""
    elapsed = time.time() - started
    gained = fraction - done_at_start
    eta = elapsed * (1 - fraction) / gained if gained > 1e-9 else None
    return {"stage": stage, "epoch": epoch, "epochs": epochs, "fraction": round(min(max(fraction, 0.0), 1.0), 6),
            "eta_s": None if eta is None or not math.isfinite(eta) else round(eta, 1)}


def _key(kind: str, payload: dict[str, Any]) -> tuple | None:
    if kind == EventKind.log and "topic" in payload:
        # A log line about one epoch (its summary, an early stop) is history too; a resume's own lines are not.
        return kind, payload.get("stage"), payload.get("epoch"), payload.get("step"), payload["topic"]
    if kind not in _HISTORY:
        return None
    return kind, payload.get("stage"), payload.get("epoch"), payload.get("step")


class EventSink:
    """The run's event log, thread-safe, with a heartbeat and exactly-once history across resumes.

    On resume the search repeats the work after its last checkpoint; the history events that work already wrote
    (alpha, metric, genotype, progress, keyed by stage, epoch and step, and log lines with a `topic`) are not
    written again. The computation is
    deterministic, so the skipped copy equals the one in the log. The log is never truncated: the watcher may
    already have read past the checkpoint.
    """

    def __init__(self, path: str | Path, after_seq: int | None = None, heartbeat_s: float = HEARTBEAT_S):
        self.log = EventLog(path, heartbeat_s=heartbeat_s)
        self._lock = threading.Lock()
        self._written: set[tuple] = set()
        if after_seq is not None and self.log.seq > after_seq:
            for _, event in read_events(self.log.path):
                if event["seq"] > after_seq:
                    key = _key(event["kind"], event.get("payload") or {})
                    if key is not None:
                        self._written.add(key)

    @property
    def seq(self) -> int:
        return self.log.seq

    def emit(self, kind: str, payload: dict[str, Any]) -> int | None:
        """Append one event unless it is history already written; returns its seq (None when skipped)."""
        key = _key(kind, payload)
        json.dumps(payload, allow_nan=False)  # fail here, in the caller's frame, on a NaN or an odd type
        with self._lock:
            if key is not None:
                if key in self._written:
                    return None
                self._written.add(key)
            return self.log.append(kind, payload)

    def append(self, kind: str, payload: dict[str, Any] | None = None) -> int | None:
        """`EventLog.append`'s signature, for code (the retrain stage) written against the plain log."""
        return self.emit(kind, payload or {})

    def close(self) -> None:
        self.log.close()

    def __enter__(self) -> "EventSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NullSink:
    """The event sink of ranks other than 0: the search runs the same, nothing is written."""

    seq = 0

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        return None
