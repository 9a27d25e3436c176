"""The server's use of a finished run's network (nas_core.inference): its exported file, built once per format into
the run directory, and predictions on a few uploaded tiles or a test scene, drawn as overlays.

Uploads are decoded by Pillow as PNG or JPEG only, bounded in count, bytes and pixels, and predicted in memory:
nothing the caller sends is written to disk or handed to another program.
"""
from __future__ import annotations

import base64
import binascii
import io
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.errors import Conflict, TooLarge
from nas_core.rundir import RunDir, replace_folder

ExportFormat = Literal["onnx", "torchscript"]
# The suffix load_model reads each format by (nas_core.inference.load_model).
MODEL_SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
MAX_TILES, MAX_TILE_BYTES, MAX_SIDE = 8, 2 * 1024 * 1024, 1024
MAX_SCENE_TILES = 8
_FORMATS = {"PNG", "JPEG"}
_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


class UploadedTile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=200, pattern=r"^[^\x00-\x1f/\\]+$",
                      description="A label for the tile (its file name); never used as a path.")
    data: str = Field(..., max_length=(MAX_TILE_BYTES * 4) // 3 + 8,
                      description=f"The PNG or JPEG file, base64; at most {MAX_TILE_BYTES // 1024 // 1024} MiB and "
                                  f"{MAX_SIDE} px a side.")


class PredictRequest(BaseModel):
    """Either tiles (uploaded images) or scene (a scene of the run's own test split)."""

    model_config = ConfigDict(extra="forbid")
    tiles: list[UploadedTile] = Field(default_factory=list, max_length=MAX_TILES)
    scene: str | None = Field(None, min_length=1, max_length=200, description="A scene name of the run's test split "
                              "(its tiles are predicted and drawn against their truth).")

    @model_validator(mode="after")
    def _one(self) -> "PredictRequest":
        if bool(self.tiles) == bool(self.scene):
            raise ValueError("give either tiles (uploaded PNG/JPEG images) or scene (a test scene's name), not both or neither")
        return self


class Overlay(BaseModel):
    name: str
    png: str = Field(description="The overlay as a base64 PNG: the image in grey, predicted foreground in green; "
                                 "against a truth, false positives red and misses blue.")
    width: int
    height: int
    foreground: float = Field(description="Share of pixels predicted as a foreground class.")
    truth: bool = Field(description="Drawn against a ground truth (a test scene) or not (an upload).")


class PredictResult(BaseModel):
    overlays: list[Overlay]
    classes: list[str]
    test_scenes: list[str] = Field(default_factory=list, description="The run's test scenes (names for `scene`), "
                                   "at most 200.")


def _trained(run_dir: str | os.PathLike) -> RunDir:
    rd = RunDir(run_dir or "/nonexistent-run-dir")  # a run not yet launched has no directory
    if not run_dir or not rd.retrained.is_file():
        raise Conflict(f"this run has no retrained network yet ({rd.retrained.relative_to(rd.root)} is written by "
                       "its retrain stage); wait for the run to finish, or launch a retrain of it")
    return rd


def _model_in(folder: Path, fmt: str) -> Path | None:
    found = sorted(folder.glob(f"*{MODEL_SUFFIX[fmt]}")) if folder.is_dir() else []
    return found[0] if found else None


def exported_model(run_dir: str | os.PathLike, fmt: ExportFormat) -> Path:
    """The run's network exported as `fmt` (exports/<fmt>/), built on first ask and again when the retrained
    checkpoint is newer. Built in a temporary folder beside it and renamed into place: a reader never sees half."""
    from nas_core.inference import export_model

    rd = _trained(run_dir)
    final = rd.exports / fmt
    with _locks_guard:
        lock = _locks.setdefault((str(rd.root), fmt), threading.Lock())
    with lock:  # one build per run and format in this process; other processes are safe by the rename
        model = _model_in(final, fmt)
        if model is not None and model.stat().st_mtime_ns >= rd.retrained.stat().st_mtime_ns:
            return model
        rd.exports.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{fmt}-", dir=rd.exports))
        try:
            export_model(rd.root, fmt, tmp)
            try:
                replace_folder(tmp, final)
            except OSError:  # another process put its build in place first: the same network, use that one
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        model = _model_in(final, fmt)
        if model is None:
            raise RuntimeError(f"export to {fmt} wrote no {MODEL_SUFFIX[fmt]} file into {final}")
        return model


def _decode(tile: UploadedTile, channels: int) -> np.ndarray:
    """uint8 (H, W, channels) of an uploaded PNG/JPEG; TooLarge or ValueError naming the tile otherwise."""
    from PIL import Image

    where = f"tiles[{tile.name!r}]"
    try:
        raw = base64.b64decode(tile.data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}.data: not base64") from None
    if len(raw) > MAX_TILE_BYTES:
        raise TooLarge(f"{where}: {len(raw)} bytes; at most {MAX_TILE_BYTES} per tile")
    try:
        # The header only: format and size are checked before a pixel is decoded (no decompression bomb).
        img = Image.open(io.BytesIO(raw), formats=sorted(_FORMATS))
    except Exception:
        raise ValueError(f"{where}: not a PNG or JPEG image") from None
    if max(img.size) > MAX_SIDE:
        raise TooLarge(f"{where}: {img.size[0]}x{img.size[1]} px; at most {MAX_SIDE} px a side")
    if channels not in (1, 3):
        raise ValueError(f"{where}: this network takes {channels}-band images, which PNG and JPEG do not hold; "
                         "predict its scenes with `nasforge predict` instead")
    try:
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"))  # an alpha band is dropped, grey made RGB
    except Exception:
        raise ValueError(f"{where}: the image data is damaged") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def _classes_of(predictor, image: np.ndarray) -> np.ndarray:
    """Class per pixel of an (H, W, C) image of any size: the network's own tile size in windows (zero-padded at
    the far edges), as the search trained it."""
    t = predictor.tile_size
    h, w = image.shape[:2]
    ph, pw = -(-h // t) * t, -(-w // t) * t
    padded = np.zeros((ph, pw, image.shape[2]), dtype=image.dtype)
    padded[:h, :w] = image
    windows = padded.reshape(ph // t, t, pw // t, t, -1).transpose(0, 2, 1, 3, 4).reshape(-1, t, t, image.shape[2])
    classes = np.concatenate([predictor.predict_tiles(windows[i:i + 16]).argmax(1) for i in range(0, len(windows), 16)])
    mask = classes.reshape(ph // t, pw // t, t, t).transpose(0, 2, 1, 3).reshape(ph, pw)
    return mask[:h, :w]


def _overlay(name: str, image: np.ndarray, truth: np.ndarray | None, mask: np.ndarray) -> Overlay:
    from PIL import Image

    from nas_core.inference import render_overlay

    buf = io.BytesIO()
    Image.fromarray(render_overlay(image, truth, mask)).save(buf, format="PNG")
    return Overlay(name=name, png=base64.b64encode(buf.getvalue()).decode(), width=image.shape[1],
                   height=image.shape[0], foreground=float((mask > 0).mean()), truth=truth is not None)


def _test_split(rd: RunDir):
    from nas_core.config import parse_experiment
    from nas_core.data import build_datasets
    from nas_core.rundir import read_config

    data, _ = read_config(rd.config)
    cfg = parse_experiment(data, where=str(rd.config))
    return build_datasets(cfg.data, cfg.seed)["test"]


def predict(run_dir: str | os.PathLike, body: PredictRequest) -> PredictResult:
    """Overlays of the run's network on the uploaded tiles, or on the tiles of one of its test scenes."""
    from nas_core.inference import load_model

    rd = _trained(run_dir)
    predictor = load_model(rd.root)
    if body.tiles:
        images = [(t.name, _decode(t, predictor.in_channels)) for t in body.tiles]
        overlays = [_overlay(name, img, None, _classes_of(predictor, img)) for name, img in images]
        return PredictResult(overlays=overlays, classes=predictor.classes)
    test = _test_split(rd)
    scenes = list(dict.fromkeys(test.scenes))
    picked = [i for i, s in enumerate(test.scenes) if s == body.scene][:MAX_SCENE_TILES]
    if not picked:
        raise ValueError(f"scene: {body.scene!r} is not in this run's test split; its scenes: "
                         f"{', '.join(scenes[:10])}{' ...' if len(scenes) > 10 else ''}")
    overlays = []
    for n, i in enumerate(picked):
        image, truth = test.base[test.indices[i]]  # as read, before normalisation: the predictor normalises
        pixels = np.ascontiguousarray(image.numpy().transpose(1, 2, 0))
        mask = predictor.predict_tiles(pixels[None])[0].argmax(0)
        overlays.append(_overlay(f"{body.scene} #{n + 1}", pixels, truth.numpy(), mask))
    return PredictResult(overlays=overlays, classes=predictor.classes, test_scenes=scenes[:200])


def list_test_scenes(run_dir: str | os.PathLike) -> list[str]:
    """The scene names of the run's test split (what `scene` may name), at most 200."""
    return list(dict.fromkeys(_test_split(_trained(run_dir)).scenes))[:200]
