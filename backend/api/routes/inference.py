"""A finished run's network in use: download it exported (ONNX, TorchScript), predict a few tiles and see overlays."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from backend import crud
from backend.api.deps import Id, Reader, SessionDep, Writer
from backend.inference import ExportFormat, PredictRequest, PredictResult, exported_model, list_test_scenes, predict

router = APIRouter(tags=["runs"])


@router.get("/runs/{run_id}/export", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The model file."},
                       409: {"description": "The run has no retrained network yet."}})
def export_run(run_id: Id, session: SessionDep, _: Reader,
               format: Annotated[ExportFormat, Query(description="onnx or torchscript")] = "onnx") -> FileResponse:
    """The run's retrained network as one self-contained file (with its normalisation inside); built once into
    the run directory (exports/<format>/, beside its card), then served from there."""
    run = crud.get_run(session, run_id)
    model = exported_model(run.run_dir, format)
    return FileResponse(model, filename=f"nasforge-run-{run_id}{model.suffix}", media_type="application/octet-stream")


@router.get("/runs/{run_id}/test-scenes", response_model=list[str])
def test_scenes(run_id: Id, session: SessionDep, _: Reader) -> list[str]:
    """The names of the run's test scenes (at most 200), for POST .../predict's `scene`."""
    return list_test_scenes(crud.get_run(session, run_id).run_dir)


@router.post("/runs/{run_id}/predict", response_model=PredictResult)
def predict_run(run_id: Id, body: PredictRequest, session: SessionDep, _: Writer) -> PredictResult:
    """Overlays of the run's network on up to 8 uploaded PNG/JPEG tiles (base64, 2 MiB and 1024 px a side each),
    or on a test scene's tiles against their truth. Predicted in memory: nothing uploaded is stored."""
    return predict(crud.get_run(session, run_id).run_dir, body)
