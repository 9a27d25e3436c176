"""Compare two to four runs (alpha, genotypes and their diff, metrics, IoU against the linked random baseline)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from backend.api.deps import Reader, SessionDep
from backend.compare import Comparison, compare_runs

router = APIRouter(tags=["compare"])


@router.get("/compare", response_model=Comparison)
def compare(session: SessionDep, _: Reader,
            runs: Annotated[list[Annotated[int, Query(ge=1, le=2**31 - 1)]], Query(description="2 to 4 run ids: ?runs=1&runs=2")]) -> Response:
    if not 2 <= len(runs) <= 4 or len(set(runs)) != len(runs):
        raise HTTPException(422, "runs: give two to four distinct run ids (?runs=1&runs=2)")
    # Serialised by pydantic-core at once: FastAPI's own path (validate against response_model again, then
    # jsonable_encoder) took 0.9 s for 4 runs x 300 epochs of alpha, model_dump_json 25 ms (python -m bench ui_scale).
    return Response(compare_runs(session, runs).model_dump_json(), media_type="application/json")
