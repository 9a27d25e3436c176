"""What a row of the runs or experiments table says about a run, for many runs in a few queries: the headline IoU
(backend/headline.py's rule), its random baselines' mean headline, the budget and the parameter count.

A table of 1,000 runs costs a fixed number of queries here, not a few per row: the event reads are batched over the
runs' ids and pick single JSON fields, so no alpha or genotype payload is loaded for a row.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any, Iterable

from pydantic import Field
from sqlmodel import Session, SQLModel, col, select

from backend.headline import NONE, chunks, headlines
from backend.models import Event, Experiment, ExperimentPublic, Headline, Page, Run, RunPublic
from nas_core.config import DISCRETE_METHODS
from nas_core.events import EventKind


class Budget(SQLModel):
    epochs: int | None = Field(description="Search epochs (a discrete search: trials x trial epochs; a retrain or a hand-designed baseline: its retrain epochs).")
    compute_s: float | None = Field(description="Wall-clock seconds the run has run: started_at to finished_at, or to its "
                                                "last event while it runs; None before it starts.")


class RunRow(RunPublic):
    """A row of the runs table: the run with its headline (RunPublic.headline) and the numbers beside it."""

    baseline_iou: float | None = Field(default=None, description="Mean headline IoU of the run's random baselines that have one.")
    baseline_runs: int = Field(default=0, description="How many random baselines the run has.")
    budget: Budget
    params: int | None = Field(default=None, description="Parameters of the evaluated network (the newest evaluation "
                                                         "that counts them), else of the best final discrete candidate.")


class RunRows(Page):
    items: list[RunRow]
    sort: str = Field(description="The sort key the page was ordered by (`-` first: descending).")


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def params_counts(session: Session, run_ids: list[int]) -> dict[int, int]:
    """Parameters of each run's evaluated network (the newest evaluation that counts them), else of its best final
    discrete candidate: two queries reading single JSON fields."""
    out: dict[int, int] = {}
    for chunk in chunks(run_ids):
        rows = session.exec(select(Event.run_id, Event.payload["params"]).where(col(Event.run_id).in_(chunk), Event.kind == EventKind.evaluation)
                            .order_by(col(Event.run_id), col(Event.seq).desc())).all()
        for run_id, count in rows:
            if run_id not in out and _count(count) is not None:
                out[run_id] = _count(count)
        best: dict[int, tuple[float, int | None]] = {}
        rest = [i for i in chunk if i not in out]
        rows = session.exec(select(Event.run_id, Event.payload["iou"], Event.payload["final"], Event.payload["params_count"])
                            .where(col(Event.run_id).in_(rest), Event.kind == EventKind.candidate)).all() if rest else []
        for run_id, iou, final, count in rows:
            if final and _count(iou) is not None and not isinstance(iou, bool) and (run_id not in best or iou > best[run_id][0]):
                best[run_id] = (iou, _count(count))
        out.update({run_id: count for run_id, (_, count) in best.items() if count is not None})
    return out


def budget(run: Run) -> Budget:
    if run.kind == "retrain" or run.network is not None:  # a hand-designed baseline trains on the retrain budget
        epochs = ((run.config or {}).get("retrain") or {}).get("epochs")
    else:
        epochs = _config_epochs({**(run.config or {}), "search": {**((run.config or {}).get("search") or {}), "method": run.method}})
    end = run.finished_at or run.last_event_at
    compute = (end - run.started_at).total_seconds() if run.started_at and end else None
    return Budget(epochs=epochs if isinstance(epochs, int) else None, compute_s=max(compute, 0.0) if compute is not None else None)


def _random_baselines(session: Session, run_ids: list[int]) -> dict[int, list[int]]:
    """The random baselines of each of `run_ids` (their hand-designed ones, which carry a `network`, left out: a
    fixed network's IoU is no measure of what chance finds in the space)."""
    out: dict[int, list[int]] = defaultdict(list)
    rows = session.exec(select(Run.id, Run.baseline_of, Run.network).where(col(Run.baseline_of).in_(run_ids))).all()
    for base_id, of, network in rows:
        if network is None:
            out[of].append(base_id)
    return out


def run_rows(session: Session, runs: list[Run]) -> list[RunRow]:
    """The table rows of `runs` (their baselines' headlines included), in a handful of queries for any number."""
    ids = [r.id for r in runs]
    bases: dict[int, list[int]] = defaultdict(list)
    for chunk in chunks(ids):
        bases.update(_random_baselines(session, chunk))
    found = headlines(session, ids + [b for bs in bases.values() for b in bs])
    params = params_counts(session, ids)
    out = []
    for run in runs:
        known = [v for v in (found[b].value for b in bases[run.id]) if v is not None]
        out.append(RunRow.model_validate(run, update={
            "headline": found[run.id], "baseline_iou": statistics.fmean(known) if known else None,
            "baseline_runs": len(bases[run.id]), "budget": budget(run), "params": params.get(run.id)}))
    return out


class ExperimentRow(ExperimentPublic):
    """A row of the experiments table: the experiment, its best run's headline, and its random baselines' mean."""

    best: Headline = Field(description="The highest headline IoU among its search and retrain runs (or 'no IoU yet').")
    best_run_id: int | None = Field(default=None, description="The run that holds `best`.")
    baseline_iou: float | None = Field(default=None, description="Mean headline IoU of its random baseline runs that have one.")
    epochs: int | None = Field(default=None, description="The config's search budget in epochs (a discrete search: "
                                                         "trials x trial epochs).")


def _config_epochs(config: dict[str, Any]) -> int | None:
    search = config.get("search") or {}
    if search.get("method") in DISCRETE_METHODS:
        trials, per = search.get("trials"), search.get("trial_epochs")
        return trials * per if isinstance(trials, int) and isinstance(per, int) else None
    return search.get("epochs") if isinstance(search.get("epochs"), int) else None


def experiment_rows(session: Session, experiments: list[Experiment], counts: dict[int, dict[str, int]]) -> list[ExperimentRow]:
    """The table rows of `experiments`: one query for their runs, then the batched headlines of all of them."""
    runs: list[tuple[int, int, str]] = []
    for chunk in chunks([e.id for e in experiments]):
        runs += session.exec(select(Run.id, Run.experiment_id, Run.kind, Run.network)
                             .where(col(Run.experiment_id).in_(chunk))).all()
    found = headlines(session, [r[0] for r in runs])
    best: dict[int, tuple[int, Headline]] = {}
    base: dict[int, list[float]] = defaultdict(list)
    for run_id, exp_id, kind, network in runs:
        h = found[run_id]
        if h.value is None or network is not None:  # a hand-designed baseline is neither the best run nor random
            continue
        if kind == "baseline":
            base[exp_id].append(h.value)
        elif exp_id not in best or h.value > best[exp_id][1].value:
            best[exp_id] = (run_id, h)
    return [ExperimentRow.model_validate(e, update={
        "run_counts": counts.get(e.id, {}), "best": best[e.id][1] if e.id in best else NONE,
        "best_run_id": best[e.id][0] if e.id in best else None,
        "baseline_iou": statistics.fmean(base[e.id]) if base[e.id] else None, "epochs": _config_epochs(e.config or {})})
        for e in experiments]


class ExperimentRows(Page):
    items: list[ExperimentRow]
    sort: str = Field(description="The sort key the page was ordered by (`-` first: descending).")


def sort_keys(session: Session, run_ids: list[int], key: str) -> dict[int, Any]:
    """One derived column (listing.RUN_DERIVED) for every run in `run_ids`, reading only what that column needs."""
    if key == "iou":
        return {i: h.value for i, h in headlines(session, run_ids).items()}
    if key == "params":
        counts = params_counts(session, run_ids)
        return {i: counts.get(i) for i in run_ids}
    if key == "baseline_iou":
        bases: dict[int, list[int]] = defaultdict(list)
        for chunk in chunks(run_ids):
            bases.update(_random_baselines(session, chunk))
        found = headlines(session, [b for bs in bases.values() for b in bs])
        means = {}
        for i in run_ids:
            known = [v for v in (found[b].value for b in bases[i]) if v is not None]
            means[i] = statistics.fmean(known) if known else None
        return means
    out = {}
    for chunk in chunks(run_ids):
        for run in session.exec(select(Run).where(col(Run.id).in_(chunk))).all():
            b = budget(run)
            out[run.id] = b.epochs if key == "epochs" else b.compute_s
    return out
