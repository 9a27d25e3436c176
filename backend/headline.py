"""The one IoU a run is summed up by, and what it is: every page and endpoint shows this value with this label.

The rule, in order: the foreground-class test IoU of the evaluate stage (class 1 of a binary segmentation; the
mean over the foreground classes when there are more); else the best discrete candidate's validation IoU; else
the last validation mIoU of the search stage (the newest search-stage `metric` event with `val_iou`). Each is
named as what it is, so a validation number is never read as a test result. `headlines` applies the rule to many
runs in a fixed number of queries (the tables of 1,000 runs).

A foreground IoU near zero is a model that predicts (almost) only background, however good its mean IoU looks
(the background class alone can give 0.5): the headline says so with `background_only`, which every page shows.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any, Iterable

from sqlmodel import Session, col, func, select

from backend.models import Event, Headline, Run
from nas_core.events import EventKind

NONE = Headline(value=None, label="no IoU yet", source=None)
# The one threshold of "predicts only background" (GET /api/schema/names gives it to the UI as well).
BACKGROUND_ONLY_BELOW = 0.05


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def from_evaluation(payload: dict[str, Any]) -> Headline | None:
    """The evaluate stage's `evaluation` payload (nas_core/search/stages.run_evaluate_stage): per-class `iou`."""
    per_class = payload.get("iou")
    if payload.get("stage") != "evaluate" or not isinstance(per_class, list) or len(per_class) < 2:
        return None
    foreground = [_number(v) for v in per_class[1:]]
    if any(v is None for v in foreground):
        return None
    value = foreground[0] if len(foreground) == 1 else statistics.fmean(foreground)
    label = ("test IoU, foreground class (evaluate stage)" if len(foreground) == 1
             else "test mIoU over the foreground classes (evaluate stage)")
    return Headline(value=value, label=label, source="evaluate", background_only=value < BACKGROUND_ONLY_BELOW)


def from_candidates(payloads: list[dict[str, Any]]) -> Headline | None:
    """The best final candidate of a discrete search (its `iou` is the trial's validation IoU)."""
    scores = [_number(p.get("iou")) for p in payloads if p.get("final")]
    scores = [s for s in scores if s is not None]
    if not scores:
        return None
    return Headline(value=max(scores), label="best candidate validation IoU (discrete search)", source="candidate")


def from_search_metric(payload: dict[str, Any]) -> Headline | None:
    """A `metric` event of the search stage: `val_iou` is the mean IoU over classes on the validation half."""
    value = _number(payload.get("val_iou"))
    if value is None or payload.get("stage", "search") != "search":
        return None
    return Headline(value=value, label="validation mIoU during search", source="search")


def headline(session: Session, run: Run) -> Headline:
    """The run's headline from its stored events (the same for the run page, the runs list and /api/compare)."""
    return headlines(session, [run.id])[run.id]


def chunks(ids: list[int], size: int = 900) -> Iterable[list[int]]:
    # SQLite caps the bound parameters of a statement: chunks keep an IN list of thousands of runs legal everywhere.
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def headlines(session: Session, run_ids: Iterable[int]) -> dict[int, Headline]:
    """The rule above for many runs at once: three queries per 900 runs whatever their number, each reading only the
    fields the rule needs (a candidate's iou and final, not its genotype), so a table of 1,000 runs stays cheap."""
    ids = list(dict.fromkeys(run_ids))
    found: dict[int, Headline] = {}
    for chunk in chunks(ids):
        rows = session.exec(select(Event.run_id, Event.payload).where(col(Event.run_id).in_(chunk), Event.kind == EventKind.evaluation)
                            .order_by(col(Event.run_id), col(Event.seq).desc())).all()
        for run_id, payload in rows:  # newest first: a resumed evaluate stage's last word counts
            if run_id not in found and (h := from_evaluation(payload or {})):
                found[run_id] = h
        cands: dict[int, list[dict[str, Any]]] = defaultdict(list)
        rest = [i for i in chunk if i not in found]
        rows = session.exec(select(Event.run_id, Event.payload["iou"], Event.payload["final"])
                            .where(col(Event.run_id).in_(rest), Event.kind == EventKind.candidate)).all() if rest else []
        for run_id, iou, final in rows:
            cands[run_id].append({"iou": iou, "final": final})
        for run_id, payloads in cands.items():
            if h := from_candidates(payloads):
                found[run_id] = h
        rest = [i for i in chunk if i not in found]
        if not rest:
            continue
        # The newest search-stage metric that carries val_iou (retrain metrics follow the search's in the log).
        stage = Event.payload["stage"].as_string()
        last = (select(Event.run_id, func.max(Event.seq).label("seq"))
                .where(col(Event.run_id).in_(rest), Event.kind == EventKind.metric, Event.payload["val_iou"].as_string().is_not(None),
                       stage.is_(None) | (stage == "search"))
                .group_by(Event.run_id).subquery())
        rows = session.exec(select(Event.run_id, Event.payload).where(Event.kind == EventKind.metric)
                            .join(last, (Event.run_id == last.c.run_id) & (Event.seq == last.c.seq))).all()
        for run_id, payload in rows:
            if h := from_search_metric(payload or {}):
                found[run_id] = h
    return {i: found.get(i, NONE) for i in ids}
