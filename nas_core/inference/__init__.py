"""Use what a search found: load a retrained network (a run directory or an exported file), predict whole scenes,
evaluate on another prepared dataset, export it, and draw what it predicted.

This is the interface the platform (backend, worker) and the `nasforge predict | evaluate | export` commands call:
- `load_model(path, device="cpu") -> Predictor`
- `Predictor.predict_tiles(uint8 N x H x W x C) -> float32 N x K x H x W` probabilities; `.classes`, `.tile_size`,
  `.normalisation`, `.card`
- `predict_scene(predictor, scene_path, out_dir, *, overlap, batch_size, progress) -> {name: Path}`
- `evaluate_dataset(predictor, dataset_dir) -> metrics dict` (a run directory: also RUN/evaluations/<name>.json)
- `export_model(run_dir, fmt, out_dir) -> {"model": Path, "card": Path, "parity": max_abs_diff}`
- `render_overlay(image, truth, prediction) -> uint8 RGB` (true positives, false positives, false negatives coloured)
"""
from nas_core.inference.evaluate import evaluate_dataset
from nas_core.inference.export import export_model
from nas_core.inference.overlay import render_overlay
from nas_core.inference.predictor import InferenceError, Predictor, load_model
from nas_core.inference.scene import predict_scene

__all__ = ["InferenceError", "Predictor", "evaluate_dataset", "export_model", "load_model", "predict_scene",
           "render_overlay"]
