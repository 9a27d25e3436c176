"""Where scenes and their class masks come from: a folder of image/mask pairs, scenes with polygon labels, or the
helicopter generator; each scene's mask at the output scale, checked against its image."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from nas_core.data.polygons import Label, rasterise, read_csv_labels, read_geojson_labels
from nas_core.data.readers import IMAGE_SUFFIXES, DataError, decode_mask, read_array
from nas_core.data.spec import PrepareSpec

@dataclass
class Scene:
    name: str                      # file name (synthetic: a made-up one); tiles and splits key on it
    image: Path | None = None
    mask: Path | None = None
    labels: list[Label] = field(default_factory=list)
    index: int = 0                 # synthetic tile index


def _list_images(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} directory does not exist")
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            if p.stem in files:  # tiles and masks are named by stem: two files would overwrite each other
                raise DataError(f"{p}: another {what[:-1]} has the same stem ({files[p.stem].name}); rename one")
            files[p.stem] = p
    if not files:
        raise DataError(f"{folder}: no {what} found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def _select(spec: PrepareSpec, names: list[str], where: str) -> list[str]:
    if spec.source.scenes:
        missing = sorted(set(spec.source.scenes) - set(names))
        if missing:
            raise DataError(f"source.scenes: {missing[:5]} not found in {where}")
        names = [n for n in names if n in set(spec.source.scenes)]
    return names[: spec.source.limit] if spec.source.limit else names


def list_scenes(spec: PrepareSpec) -> tuple[list[Scene], dict[str, int]]:
    """The scenes to prepare and the label-value -> class map."""
    src = spec.source
    if src.kind == "synthetic":
        names = _select(spec, [f"synthetic-{spec.seed}-{i:06d}.png" for i in range(src.n)], "the generator's scenes")
        return [Scene(n, index=int(n.rsplit("-", 1)[1][:6])) for n in names], {"helicopter": 1}
    images = _list_images(Path(src.images), "images")
    if src.kind == "folder":
        masks = _list_images(Path(src.masks), "masks")
        names = _select(spec, sorted(p.name for p in images.values()), src.images)
        scenes = []
        for name in names:
            stem = Path(name).stem
            if stem not in masks:
                raise DataError(f"{images[stem]}: no mask named {stem}.* in {src.masks}")
            scenes.append(Scene(name, images[stem], masks[stem]))
        return scenes, {}
    labels_path = Path(src.labels)
    if labels_path.is_dir():
        labels = []
        for f in sorted(labels_path.glob("*.geojson")):
            stem_match = next((p.name for s, p in images.items() if s == f.stem), None)
            labels += read_geojson_labels(f, src.image_column, src.label_column, stem_match)
    elif labels_path.suffix.lower() in (".geojson", ".json"):
        labels = read_geojson_labels(labels_path, src.image_column, src.label_column)
    elif labels_path.suffix.lower() == ".csv":
        labels = read_csv_labels(labels_path, src.image_column, src.geometry_column, src.label_column)
    else:
        raise DataError(f"{labels_path}: labels must be a .csv, a .geojson, or a directory of .geojson files")
    by_name = {p.name: p for p in images.values()}
    unknown_scene = next((lab for lab in labels if lab.scene not in by_name), None)
    if unknown_scene:
        raise DataError(f"{unknown_scene.where}: scene {unknown_scene.scene!r} is not in {src.images}")
    classes = src.classes or {v: i + 1 for i, v in enumerate(sorted({lab.value for lab in labels}))}
    names = _select(spec, sorted(by_name), src.images)
    grouped: dict[str, list[Label]] = {n: [] for n in names}
    for lab in labels:
        if lab.scene in grouped:
            grouped[lab.scene].append(lab)
    return [Scene(n, by_name[n], labels=grouped[n]) for n in names], classes


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) without decoding the pixels."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tf:
                shape = tf.series[0].shape
            h, w = (shape[1], shape[2]) if len(shape) == 3 and shape[0] <= 16 and shape[2] > 16 else shape[:2]
            return int(w), int(h)
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Exception as exc:
        raise DataError(f"{path}: cannot read as an image ({type(exc).__name__}: {exc})") from None


def resize_mask(mask: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1:
        return mask
    h, w = mask.shape
    return np.asarray(Image.fromarray(mask).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.NEAREST))


def resize_image(img: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1:
        return img
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # BOX averages the source pixels a target pixel covers: the right filter for shrinking.
    chans = [np.asarray(Image.fromarray(img[:, :, c].astype(np.float32), mode="F").resize(size, Image.BOX))
             for c in range(img.shape[2])]
    return np.stack(chans, -1).round().clip(0, np.iinfo(img.dtype).max).astype(img.dtype) \
        if np.issubdtype(img.dtype, np.integer) else np.stack(chans, -1)


def scene_mask(spec: PrepareSpec, scene: Scene, classes: dict[str, int]) -> tuple[np.ndarray, dict]:
    """The scene's class mask at the output scale, and label counts."""
    info = {}
    if spec.source.kind == "synthetic":
        from nas_core.data.synthetic import _tile

        mask = _tile(spec.seed, scene.index, spec.source.size)[1].astype(np.uint8)
    elif spec.source.kind == "folder":
        mask = decode_mask(read_array(scene.mask), scene.mask, spec.source.mask_values, spec.num_classes)
        w, h = image_size(scene.image)
        if mask.shape != (h, w):
            raise DataError(f"{scene.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {scene.image.name} "
                            f"is {w}x{h}; they must match pixel for pixel")
    else:
        w, h = image_size(scene.image)
        mask, drawn, dropped = rasterise(scene.labels, w, h, classes, spec.source.outside, scene.image)
        info = {"polygons": drawn, "polygons_dropped": dropped}
    if spec.num_classes is not None and mask.size and int(mask.max()) >= spec.num_classes:
        raise DataError(f"{scene.mask or scene.image}: class {int(mask.max())} found but num_classes is {spec.num_classes}")
    return resize_mask(mask, spec.scale), info
