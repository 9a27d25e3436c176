"""An experiment's study over seeds: every search run's test IoU beside its random baselines' (and its
hand-designed baselines', per network), per method, with
the means, their 95% bootstrap intervals, the difference and the verdict (backend/stats.py), and the proxies'
rank correlation against trained IoU over the experiment's discrete candidates, with parameter count and FLOPs
as the baselines every proxy must beat.

An IoU counts only when it is a test IoU (the headline from the evaluate stage, backend/headline.py): a
validation number of one arm is never set against a test number of the other.
"""
from __future__ import annotations

from typing import Any

from sqlmodel import Field, Session, SQLModel, col, select

from backend import crud, stats
from backend.headline import headlines
from backend.models import Event, Headline, Run
from nas_core.config import DISCRETE_METHODS
from nas_core.events import EventKind
from nas_core.models.hand_designed import NetworkConfig

_MAX_RUNS = 500
_MAX_CANDIDATES = 20_000


class StudyPoint(SQLModel):
    run: int
    seed: int | None
    status: str
    iou: float | None = Field(description="Test IoU (foreground class), or None while the run has none.")
    background_only: bool = False
    baseline_of: int | None = None


class StudyArm(SQLModel):
    points: list[StudyPoint]
    n: int = Field(description="Points with a test IoU.")
    mean: float | None
    low: float | None = Field(description="95% bootstrap interval of the mean (None below two points).")
    high: float | None


class StudyDifference(SQLModel):
    mean: float | None = Field(description="mean(searched) - mean(random).")
    low: float | None
    high: float | None


class StudyGroup(SQLModel):
    method: str
    searched: StudyArm
    random: StudyArm
    difference: StudyDifference
    verdict: str
    networks: dict[str, StudyArm] = Field(default_factory=dict, description="The hand-designed baselines "
                                          "(baseline.networks) of these searches, by network label: each network's "
                                          "test IoU per seed, beside the searched and the random arm.")


class ProxyRow(SQLModel):
    name: str
    baseline: bool = Field(description="params or flops: the size baselines, not proxies.")
    spearman: float | None
    kendall: float | None
    n: int
    beats_size: bool | None = Field(description="Its Spearman is above both size baselines' (None: undefined).")


class Study(SQLModel):
    experiment_id: int
    groups: list[StudyGroup]
    proxies: list[ProxyRow]
    candidates: int = Field(description="Trained discrete candidates the proxy table is computed over.")
    bootstrap: dict[str, Any]


def _point(run: Run, h: Headline) -> StudyPoint:
    test = h.source == "evaluate" and h.value is not None
    return StudyPoint(run=run.id, seed=(run.config or {}).get("seed"), status=run.status,
                      iou=h.value if test else None, background_only=h.background_only, baseline_of=run.baseline_of)


def _arm(points: list[StudyPoint]) -> StudyArm:
    s = stats.mean_interval(stats.finite(p.iou for p in points))
    return StudyArm(points=points, **s)


def _trained_candidates(session: Session, run_ids: list[int]) -> list[dict[str, Any]]:
    if not run_ids:
        return []
    q = (select(Event.payload).where(col(Event.run_id).in_(run_ids), Event.kind == EventKind.candidate)
         .order_by(col(Event.id)).limit(_MAX_CANDIDATES))
    # A pre-screened candidate (iou None) or a failed trial has no trained IoU to rank against.
    return [p for p in session.exec(q).all() if p and p.get("final", True) and p.get("status", "ok") == "ok"
            and isinstance(p.get("iou"), (int, float))]


def study(session: Session, experiment_id: int) -> Study:
    crud.get_experiment(session, experiment_id)  # 404 when there is none
    searches = crud.list_runs(session, experiment_id=experiment_id, kind="search", limit=_MAX_RUNS)[0]
    baselines = crud.list_runs(session, experiment_id=experiment_id, kind="baseline", limit=_MAX_RUNS)[0]
    heads = headlines(session, [r.id for r in (*searches, *baselines)])
    by_method: dict[str, list[Run]] = {}
    for run in sorted(searches, key=lambda r: r.id):
        by_method.setdefault(run.method, []).append(run)
    groups = []
    for method, runs in by_method.items():
        ids = {r.id for r in runs}
        searched = _arm([_point(r, heads[r.id]) for r in runs])
        mine = [b for b in sorted(baselines, key=lambda r: r.id) if b.baseline_of in ids]
        random = _arm([_point(b, heads[b.id]) for b in mine if b.network is None])
        by_network: dict[str, list[StudyPoint]] = {}
        for b in mine:
            if b.network is not None:
                by_network.setdefault(NetworkConfig.model_validate(b.network).label, []).append(_point(b, heads[b.id]))
        diff = stats.difference_interval(stats.finite(p.iou for p in searched.points),
                                         stats.finite(p.iou for p in random.points))
        groups.append(StudyGroup(method=method, searched=searched, random=random, difference=StudyDifference(**diff),
                                 verdict=stats.verdict(diff, searched.n, random.n, len(searched.points),
                                                             len(random.points)),
                                 networks={label: _arm(points) for label, points in by_network.items()}))
    discrete = [r.id for r in (*searches, *baselines) if r.method in DISCRETE_METHODS]
    candidates = _trained_candidates(session, discrete)
    return Study(experiment_id=experiment_id, groups=groups,
                 proxies=[ProxyRow(**row) for row in stats.rank_correlations(candidates)], candidates=len(candidates),
                 bootstrap={"resamples": stats.BOOTSTRAP_RESAMPLES, "seed": stats.BOOTSTRAP_SEED, "level": stats.LEVEL,
                            "min_seeds": stats.MIN_SEEDS})
