"""Side-by-side comparison of 2-4 runs: alpha per epoch and final, genotypes and their diff, metrics, IoU vs baseline,
and the precision-recall curves of the runs and of their hand-designed baselines.

Each run's IoU is its headline (backend/headline.py), the same number and label the run page shows.
"""
from __future__ import annotations

import json
import statistics
from typing import Any

import numpy as np
from sqlmodel import Field, Session, SQLModel

from backend import crud
from backend.headline import headline
from backend.ingest import event_payloads, event_seqs
from backend.models import Headline, Run, RunPublic
from nas_core.events import EventKind
from nas_core.models.hand_designed import NetworkConfig
from nas_core.rundir import RunDir, read_json

_NOT_METRICS = {"epochs", "step", "steps", "tiles", "params"}
# The slider needs alpha at a few hundred points at most: beyond that the page gets evenly spaced frames (always the
# first and the last), each heatmap titled with the epoch it shows. Four decimals are finer than a colour step.
MAX_ALPHA_FRAMES = 100
ALPHA_DECIMALS = 4


class NetworkBaseline(SQLModel):
    run: int
    label: str = Field(description="The network's label (`NetworkConfig.label`), as its events name it.")
    status: str
    headline: Headline
    curves: dict[str, Any] | None


class CompareRun(SQLModel):
    run: RunPublic
    alpha: list[dict[str, Any]] = Field(description=f"Alpha events' payloads (plus seq), at most {MAX_ALPHA_FRAMES}, "
                                                    "evenly spaced over the run's history, weights to "
                                                    f"{ALPHA_DECIMALS} decimals; a cell's edges and ops only where they differ from "
                                                    "its previous frame's.")
    alpha_total: int = Field(description="How many alpha events the run has (len(alpha) when none were left out).")
    final_alpha: dict[str, Any] | None
    genotype: dict[str, Any] | None
    metrics: dict[str, list[list[float]]]
    final_metrics: dict[str, float]
    headline: Headline = Field(description="The run's headline IoU and what it is (backend/headline.py).")
    iou: float | None = Field(description="headline.value, the number set against the baselines'.")
    best_candidate: dict[str, Any] | None = None
    curves: dict[str, Any] | None = Field(default=None, description="The evaluate stage's precision-recall curves "
                                          "(`{class: {iou threshold: {precision, recall, ap, ...}}}`), None before it.")
    baseline_runs: list[int] = Field(description="The run's random baselines.")
    baseline_iou: list[float | None] = Field(description="Headline IoU of each random baseline (None until it has one).")
    baseline_iou_mean: float | None
    iou_vs_baseline: float | None
    networks: list[NetworkBaseline] = Field(default_factory=list, description="The run's hand-designed baselines "
                                            "(baseline.networks), each with its curves, drawn beside the run's.")


class GenotypeDiff(SQLModel):
    path: str
    values: list[Any]


class Comparison(SQLModel):
    runs: list[CompareRun]
    genotype_diff: list[GenotypeDiff]


def _numbers(payload: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in payload.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _scalar(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def spaced(n: int, limit: int) -> list[int]:
    """`limit` indices of 0..n-1 spread evenly, the first and the last among them (all of them when n <= limit)."""
    if n <= limit:
        return list(range(n))
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})


def _rounded(payload: dict[str, Any]) -> dict[str, Any]:
    cells = {ct: {**c, "alpha": np.round(np.asarray(c["alpha"], dtype=float), ALPHA_DECIMALS).tolist()}
             if c.get("alpha") else c for ct, c in (payload.get("cells") or {}).items()}
    return {**payload, "cells": cells}


def _alpha(session: Session, run_id: int) -> tuple[list[dict[str, Any]], int]:
    """The run's alpha frames for the slider, and how many it has: only the chosen events are read and parsed."""
    seqs = event_seqs(session, run_id, EventKind.alpha)
    chosen = [seqs[i] for i in spaced(len(seqs), MAX_ALPHA_FRAMES)]
    frames, names = [], {}
    for seq, payload in event_payloads(session, run_id, EventKind.alpha, chosen):
        frame = dict(_rounded(payload), seq=seq)
        for ct, c in frame["cells"].items():  # edges and ops once per cell, as long as they stay the same
            said = {k: c[k] for k in ("edges", "ops") if k in c}
            if said and names.get(ct) == said:
                frame["cells"][ct] = {k: v for k, v in c.items() if k not in said}
            names[ct] = said or names.get(ct)
        frames.append(frame)
    return frames, len(seqs)


def _summary(session: Session, run: Run) -> dict[str, Any]:
    alpha, alpha_total = _alpha(session, run.id)
    genotypes = [payload for _, payload in event_payloads(session, run.id, EventKind.genotype)]
    # The genotype event wraps Genotype.to_dict() as payload["genotype"] (nas_core/search/loop.py).
    genotype = genotypes[-1].get("genotype", genotypes[-1]) if genotypes else None
    # A discrete search (random, evolution, REINFORCE) reports trained candidates; its result is the best one.
    cands = [c for _, c in event_payloads(session, run.id, EventKind.candidate) if c.get("final") and _scalar(c.get("iou")) is not None]
    best = max(cands, key=lambda c: c["iou"]) if cands else None
    if genotype is None and best is not None:
        genotype = best.get("genotype")
    if genotype is None and run.run_dir:
        try:
            genotype = read_json(RunDir(run.run_dir).genotype)
        except (OSError, ValueError):
            pass
    # Series are named stage.metric (search.val_iou, retrain.train_loss): the stages train different networks.
    metrics: dict[str, list[list[float]]] = {}
    final: dict[str, float] = {}
    for seq, payload in event_payloads(session, run.id, EventKind.metric):
        nums = _numbers(payload)
        x = nums.pop("epoch", float(seq))
        prefix = f"{payload['stage']}." if isinstance(payload.get("stage"), str) else ""
        for name, value in nums.items():
            if name not in _NOT_METRICS:
                metrics.setdefault(prefix + name, []).append([x, value])
                final[prefix + name] = value
    evaluations = [payload for _, payload in event_payloads(session, run.id, EventKind.evaluation)]
    for payload in evaluations:
        prefix = f"{payload.get('stage') or 'evaluation'}."
        final.update({prefix + k: v for k, v in _numbers(payload).items() if k not in _NOT_METRICS})
        final.update({prefix + k: v for k, v in _numbers(payload.get("pixel") or {}).items()})
    top = headline(session, run)
    return {"curves": _curves(evaluations), "alpha": alpha, "alpha_total": alpha_total, "final_alpha": alpha[-1] if alpha else None, "genotype": genotype, "metrics": metrics,
            "final_metrics": final, "headline": top, "iou": top.value,
            "best_candidate": {k: best.get(k) for k in ("trial", "iou", "params_count", "train_time_s")} if best else None}


def _curves(evaluations: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The precision-recall curves of the newest evaluate-stage `evaluation` (the test split's)."""
    tested = [p for p in evaluations if p.get("stage") == "evaluate" and isinstance(p.get("curves"), dict)]
    return tested[-1]["curves"] if tested else None


def _network_baseline(session: Session, run: Run) -> NetworkBaseline:
    evaluations = [payload for _, payload in event_payloads(session, run.id, EventKind.evaluation)]
    return NetworkBaseline(run=run.id, label=NetworkConfig.model_validate(run.network).label, status=run.status,
                           headline=headline(session, run), curves=_curves(evaluations))


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, list) and obj and all(isinstance(v, (dict, list)) for v in obj):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}.{i}" if prefix else str(i)))
        return out
    return {prefix: obj}


def genotype_diff(genotypes: list[dict[str, Any] | None]) -> list[GenotypeDiff]:
    """Every genotype entry (cell.edge -> op) that differs between the runs, with each run's value."""
    flat = [_flatten(g) if g else {} for g in genotypes]
    paths = sorted(set().union(*flat))
    return [GenotypeDiff(path=p, values=[f.get(p) for f in flat]) for p in paths
            if len({json.dumps(f.get(p), sort_keys=True) for f in flat}) > 1]


def compare_runs(session: Session, run_ids: list[int]) -> Comparison:
    out = []
    for run_id in run_ids:
        run = crud.get_run(session, run_id)
        s = _summary(session, run)
        linked = sorted(crud.list_runs(session, baseline_of=run.id, limit=100)[0], key=lambda b: b.id)
        bases = [b for b in linked if b.network is None]
        base_iou = [headline(session, b).value for b in bases]
        known = [v for v in base_iou if v is not None]
        mean = statistics.fmean(known) if known else None
        public = RunPublic.model_validate(run, update={"headline": s["headline"]})
        out.append(CompareRun(run=public, baseline_runs=[b.id for b in bases], baseline_iou=base_iou,
                              baseline_iou_mean=mean, iou_vs_baseline=(s["iou"] - mean) if s["iou"] is not None and mean is not None else None,
                              networks=[_network_baseline(session, b) for b in linked if b.network is not None], **s))
    return Comparison(runs=out, genotype_diff=genotype_diff([r.genotype for r in out]))
