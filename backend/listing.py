"""The runs and experiments tables as the server pages them: filters, one sort key, a page of rows.

A column the database holds (id, created, status, method, kind, name) is sorted by the database and only the page
is read. A derived column (the headline IoU, the baselines' IoU, the budget, the parameter count) is computed for
every row the filters keep, with the batched reads of backend/summary.py, then sorted and sliced here: a few
queries for the whole filtered set, so sorting 1,000 runs by IoU costs no more than reading their summaries once.
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from backend.crud import run_counts
from backend.models import Experiment, Run, User
from backend.summary import ExperimentRow, RunRow, experiment_rows, run_rows, sort_keys

# Sort keys as the API takes them (`sort=-iou`: descending); the first maps to a column, the second is derived.
RUN_COLUMNS = {"id": Run.id, "created": Run.created_at, "status": Run.status, "method": Run.method, "kind": Run.kind}
RUN_DERIVED = ("iou", "baseline_iou", "epochs", "compute_s", "params")  # backend/summary.sort_keys
EXPERIMENT_COLUMNS = {"id": Experiment.id, "created": Experiment.created_at, "name": Experiment.name}
EXPERIMENT_DERIVED = {"iou": lambda e: e.best.value, "baseline_iou": lambda e: e.baseline_iou, "epochs": lambda e: e.epochs,
                      "runs": lambda e: sum(e.run_counts.values()), "method": lambda e: (e.config.get("search") or {}).get("method")}


def sort_pattern(*keys: Any) -> str:
    """The `sort` query parameter's pattern: a key, optionally after `-`."""
    return "^-?(" + "|".join(k for d in keys for k in d) + ")$"


def _like(q: str) -> str:
    return f"%{q.replace('%', '').replace('_', '')}%"


def _owned_by(owner: str):
    return select(User.id).where(User.name == owner)


def _order(sort: str, columns: dict[str, Any]) -> tuple[str, bool, Any]:
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    return key, desc, columns.get(key)


def _sorted(rows: list[Any], key: Any, desc: bool) -> list[Any]:
    # Rows without the value sort last whichever the direction: "best IoU first" must not open on runs with none.
    have = [r for r in rows if key(r) is not None]
    have.sort(key=lambda r: (key(r), r.id if desc else -r.id), reverse=desc)
    return have + sorted((r for r in rows if key(r) is None), key=lambda r: -r.id)


class _Key:
    __slots__ = ("id", "value")

    def __init__(self, id: int, value: Any):
        self.id, self.value = id, value


def list_runs(session: Session, *, sort: str = "-id", limit: int = 50, offset: int = 0, q: str | None = None,
              owner: str | None = None, **equal: Any) -> tuple[list[RunRow], int]:
    """A page of run rows. `equal`: column=value filters (experiment_id, status, kind, method, baseline_of,
    parent_run_id); `owner` the experiment owner's user name; `q` a substring of the run's method, status reason or
    job id or of its experiment's name (or the run id itself)."""
    where = [getattr(Run, k) == v for k, v in equal.items() if v is not None]
    if owner:
        where.append(col(Run.experiment_id).in_(select(Experiment.id).where(col(Experiment.owner_id).in_(_owned_by(owner)))))
    if q:
        like = _like(q)
        text = [col(Run.method).ilike(like), col(Run.status_reason).ilike(like), col(Run.job_id).ilike(like),
                col(Run.experiment_id).in_(select(Experiment.id).where(col(Experiment.name).ilike(like)))]
        if q.strip().isdigit():
            text.append(Run.id == int(q))
        where.append(or_(*text))
    total = session.exec(select(func.count()).select_from(Run).where(*where)).one()
    key, desc, column = _order(sort, RUN_COLUMNS)
    if column is not None:
        order = [col(column).desc() if desc else col(column).asc(), col(Run.id).desc()]
        runs = session.exec(select(Run).where(*where).order_by(*order).offset(offset).limit(limit)).all()
        return run_rows(session, list(runs)), total
    # Only the sort key is computed for every filtered run; full rows are built for the page alone.
    keys = sort_keys(session, list(session.exec(select(Run.id).where(*where)).all()), key)
    ordered = _sorted([_Key(i, v) for i, v in keys.items()], lambda r: r.value, desc)[offset:offset + limit]
    page = {r.id: r for r in session.exec(select(Run).where(col(Run.id).in_([k.id for k in ordered]))).all()}
    return run_rows(session, [page[k.id] for k in ordered]), total


def list_experiments(session: Session, *, sort: str = "-id", limit: int = 50, offset: int = 0, q: str | None = None,
                     owner: str | None = None, owner_id: int | None = None, method: str | None = None,
                     status: str | None = None) -> tuple[list[ExperimentRow], int]:
    """A page of experiment rows. `method` the config's search method; `status` keeps experiments with at least one
    run in that status."""
    where = []
    if q:
        where.append(or_(col(Experiment.name).ilike(_like(q)), col(Experiment.description).ilike(_like(q))))
    if owner_id is not None:
        where.append(Experiment.owner_id == owner_id)
    if owner:
        where.append(col(Experiment.owner_id).in_(_owned_by(owner)))
    if method:
        where.append(Experiment.config[("search", "method")].as_string() == method)
    if status:
        where.append(col(Experiment.id).in_(select(Run.experiment_id).where(Run.status == status)))
    total = session.exec(select(func.count()).select_from(Experiment).where(*where)).one()
    key, desc, column = _order(sort, EXPERIMENT_COLUMNS)
    if column is not None:
        order = [col(column).desc() if desc else col(column).asc(), col(Experiment.id).desc()]
        exps: Sequence[Experiment] = session.exec(select(Experiment).where(*where).order_by(*order).offset(offset).limit(limit)).all()
        return experiment_rows(session, list(exps), run_counts(session, [e.id for e in exps])), total
    exps = session.exec(select(Experiment).where(*where)).all()
    rows = experiment_rows(session, list(exps), run_counts(session, [e.id for e in exps]))
    return _sorted(rows, EXPERIMENT_DERIVED[key], desc)[offset:offset + limit], total
