"""Whole-scene prediction: sliding windows with overlap, blended back into a probability map and a class mask,
read and written window by window so memory stays bounded on scenes larger than memory."""
from __future__ import annotations

from pathlib import Path


def predict_scene(predictor, scene_path: str | Path, out_dir: str | Path, *, overlap: int | None = None,
                  batch_size: int = 8, progress: bool = True) -> dict:
    """Predict one scene (PNG, JPEG, TIFF or GeoTIFF, any size) and write into `out_dir`:
    {"mask": <stem>.mask.tif (class indices, georeferenced like the input) or .mask.png for a plain image,
     "probability": <stem>.prob.tif (float32, one band per class), "polygons": <stem>.geojson (objects with their
     class and score, in map coordinates when the scene is georeferenced)} -> Paths.
    `overlap` defaults to a quarter of the tile."""
    raise NotImplementedError
