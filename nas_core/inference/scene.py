"""Whole-scene prediction: sliding windows with overlap, blended back into a probability map and a class mask,
read and written one band of windows at a time so memory stays bounded on scenes larger than memory.

rasterio reads every format the project takes (PNG, JPEG, TIFF, GeoTIFF) in windows and writes GeoTIFFs with the
input's CRS and transform, so a georeferenced scene gives georeferenced outputs.
"""
from __future__ import annotations

import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from nas_core.inference.polygons import mask_polygons, write_geojson
from nas_core.inference.predictor import InferenceError
from nas_core.inference.tiling import StripBlender, cut, window_starts
from nas_core.rundir import atomic_path

SCENE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
GDAL_CACHE_BYTES = 64 * 2**20  # in bytes: rasterio passes a small number through as bytes, not megabytes


def output_paths(scene_path: Path, out_dir: Path) -> dict[str, Path]:
    stem = scene_path.stem
    return {"mask": out_dir / f"{stem}.mask.tif", "probability": out_dir / f"{stem}.prob.tif",
            "polygons": out_dir / f"{stem}.geojson", "mask_png": out_dir / f"{stem}.mask.png"}


def predict_scene(predictor, scene_path: str | Path, out_dir: str | Path, *, overlap: int | None = None,
                  batch_size: int = 8, progress: bool = True) -> dict:
    """Predict one scene (PNG, JPEG, TIFF or GeoTIFF, any size) and write into `out_dir`:
    {"mask": <stem>.mask.tif (class indices, with the input's CRS and transform), "probability": <stem>.prob.tif
     (float32, one band per class), "polygons": <stem>.geojson (objects with class and score, in map coordinates
     when the scene is georeferenced), and for a plain image "mask_png": <stem>.mask.png} -> Paths.
    `overlap` (pixels shared by neighbouring windows) defaults to a quarter of the tile."""
    scene_path, out_dir = Path(scene_path), Path(out_dir)
    tile = predictor.tile_size
    overlap = tile // 4 if overlap is None else int(overlap)
    if not 0 <= overlap < tile:
        raise InferenceError(f"--overlap {overlap}: must be at least 0 and below the tile size ({tile})")
    if batch_size < 1:
        raise InferenceError(f"--batch-size {batch_size}: must be at least 1")
    if scene_path.suffix.lower() not in SCENE_SUFFIXES:
        raise InferenceError(f"{scene_path}: not a scene this command reads ({', '.join(SCENE_SUFFIXES)})")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = output_paths(scene_path, out_dir)
    # GDAL's block cache holds the outputs' dirty blocks; left at its default (5% of RAM) it grows with the scene
    # up to gigabytes, capped it keeps memory flat whatever the scene's size.
    with warnings.catch_warnings(), rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a plain PNG or JPEG has no georeference: fine
        try:
            src = rasterio.open(scene_path)
        except RasterioIOError as exc:
            raise InferenceError(f"{scene_path}: cannot read as an image ({exc})") from None
        with src:
            georef = src.crs is not None or not src.transform.is_identity
            bands = _bands(src, predictor.in_channels, scene_path)
            _predict_raster(predictor, src, bands, paths, tile, overlap, batch_size, progress, georef)
        features = mask_polygons(paths["mask"], paths["probability"], predictor.classes)
        write_geojson(paths["polygons"], features, src.crs if georef else None)
        if georef:
            paths.pop("mask_png")
        else:
            _copy_png(paths["mask"], paths["mask_png"])
    return paths


def _bands(src, channels: int, path: Path) -> list[int]:
    """The 1-based bands that feed the network: its channels first (an RGBA PNG's alpha is left out); a grey scene
    for a colour network is an error, not a guess."""
    if src.count >= channels:
        return list(range(1, channels + 1))
    raise InferenceError(f"{path}: {src.count} band(s), the network takes {channels}; give a scene with "
                         f"{channels} bands (as the training tiles had)")


def _predict_raster(predictor, src, bands, paths, tile, overlap, batch_size, progress, georef) -> None:
    height, width = src.height, src.width
    k = predictor.num_classes
    step = tile - overlap
    ys, xs = window_starts(height, tile, step), window_starts(width, tile, step)
    profile = {"driver": "GTiff", "width": width, "height": height, "tiled": True, "blockxsize": 256,
               "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
    if georef:
        profile.update(crs=src.crs, transform=src.transform)
    blender = StripBlender(k, width, tile, overlap)
    # Each output appears whole or not at all, as every write of the project (nas_core.rundir.atomic_path).
    with ExitStack() as stack:
        mask_tmp = stack.enter_context(atomic_path(paths["mask"]))
        prob_tmp = stack.enter_context(atomic_path(paths["probability"]))
        mask_ds = stack.enter_context(rasterio.open(mask_tmp, "w", count=1, dtype="uint8", **profile))
        prob_ds = stack.enter_context(rasterio.open(prob_tmp, "w", count=k, dtype="float32", predictor=3, **profile))
        for i, name in enumerate(predictor.classes, 1):
            prob_ds.set_band_description(i, name)
        bar = stack.enter_context(_progress(len(ys) * len(xs), src.name, progress))
        for n, y0 in enumerate(ys):
            rows = min(tile, height - y0)
            strip = src.read(bands, window=Window(0, y0, width, rows)).transpose(1, 2, 0)
            for b in range(0, len(xs), batch_size):
                batch_x = xs[b:b + batch_size]
                probs = predictor.predict_tiles(np.stack([cut(strip, x0, tile) for x0 in batch_x]))
                for p, x0 in zip(probs, batch_x):
                    blender.add(p, y0, x0)
                bar(len(batch_x))
            until = ys[n + 1] if n + 1 < len(ys) else height
            blended = blender.flush(until)
            win = Window(0, y0, width, until - y0)
            prob_ds.write(blended, window=win)
            mask_ds.write(blended.argmax(0).astype(np.uint8)[None], window=win)


def _copy_png(src: Path, dst: Path) -> None:
    import rasterio.shutil

    with atomic_path(dst) as tmp:
        rasterio.shutil.copy(src, tmp, driver="PNG")
    dst.with_name(dst.name + ".aux.xml").unlink(missing_ok=True)
    tmp.with_name(tmp.name + ".aux.xml").unlink(missing_ok=True)


@contextmanager
def _progress(total: int, name: str, enabled: bool):
    """A rich progress bar over the windows (none when asked for none); calling what it yields advances it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  disable=not enabled) as bar:
        task = bar.add_task(f"predict {Path(name).name}", total=total)
        yield lambda n: bar.advance(task, n)
