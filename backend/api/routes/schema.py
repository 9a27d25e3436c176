"""The JSON Schema of the experiment config, from which the UI builds its form. No token needed."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from nas_core.config import experiment_json_schema

router = APIRouter(tags=["schema"])


@router.get("/schema/experiment", response_model=dict[str, Any])
def experiment_schema() -> dict[str, Any]:
    """`nas_core.config.ExperimentConfig` as JSON Schema, with defaults and descriptions."""
    return experiment_json_schema()
