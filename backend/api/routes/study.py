"""An experiment's study over seeds: searched vs random test IoU with bootstrap intervals and a verdict, and the
proxies' rank correlation against trained IoU (backend/study.py)."""
from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import Id, Reader, SessionDep
from backend.study import Study, study

router = APIRouter(tags=["study"])


@router.get("/experiments/{experiment_id}/study", response_model=Study)
def read_study(experiment_id: Id, session: SessionDep, _: Reader) -> Study:
    """Every search run's test IoU beside its random baselines', per method; 404 when the experiment is not there."""
    return study(session, experiment_id)
