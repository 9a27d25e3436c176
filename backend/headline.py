"""The one IoU a run is summed up by, and what it is: every page and endpoint shows this value with this label.

The rule, in order: the foreground-class test IoU of the evaluate stage (class 1 of a binary segmentation; the
mean over the foreground classes when there are more); else the best discrete candidate's validation IoU; else
the last validation mIoU of the search stage. Each is named as what it is, so a validation number is never read
as a test result.
"""
from __future__ import annotations

import statistics
from typing import Any

from sqlmodel import Session, col, select

from backend.models import Event, Headline, Run
from nas_core.events import EventKind

NONE = Headline(value=None, label="no IoU yet", source=None)


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
    if len(foreground) == 1:
        return Headline(value=foreground[0], label="test IoU, foreground class (evaluate stage)", source="evaluate")
    return Headline(value=statistics.fmean(foreground), label="test mIoU over the foreground classes (evaluate stage)",
                    source="evaluate")


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
    def payloads(kind: EventKind, last: int | None = None) -> list[dict[str, Any]]:
        q = select(Event.payload).where(Event.run_id == run.id, Event.kind == kind).order_by(col(Event.seq).desc())
        return [p or {} for p in session.exec(q.limit(last) if last else q).all()]

    for payload in payloads(EventKind.evaluation):  # newest first: a resumed evaluate stage's last word counts
        found = from_evaluation(payload)
        if found:
            return found
    found = from_candidates(payloads(EventKind.candidate))
    if found:
        return found
    for payload in payloads(EventKind.metric, last=50):
        found = from_search_metric(payload)
        if found:
            return found
    return NONE
