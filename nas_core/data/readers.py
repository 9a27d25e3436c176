"""Reading scenes and masks from disk (PNG, JPEG, TIFF/GeoTIFF) and turning mask pixels into class indices."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Scenes are large by design (2560 px and more); PIL's bomb guard is for untrusted web uploads.
Image.MAX_IMAGE_PIXELS = None


class DataError(ValueError):
    """Bad input data; the message names the file and the problem and, where there is one, the fix."""


def read_array(path: str | Path) -> np.ndarray:
    """(H, W) or (H, W, C) array; TIFF through tifffile (band-first GeoTIFFs are turned band-last)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
            if arr.ndim == 3 and arr.shape[0] <= 16 and arr.shape[2] > 16:
                arr = np.moveaxis(arr, 0, -1)
            return arr
        with Image.open(path) as im:
            im.load()
            if im.mode == "P":
                return np.asarray(im)  # palette indices are the classes
            if im.mode in ("RGBA", "LA", "CMYK", "YCbCr", "1"):
                im = im.convert("RGB" if im.mode != "1" else "L")
            return np.asarray(im)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Exception as exc:  # PIL and tifffile raise many types for a corrupt file
        raise DataError(f"{path}: cannot read as an image ({type(exc).__name__}: {exc})") from None


def read_image(path: str | Path) -> np.ndarray:
    """A scene as (H, W, C), C in 1..16."""
    arr = read_array(path)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or not 1 <= arr.shape[2] <= 16:
        raise DataError(f"{path}: expected an image of shape (H, W) or (H, W, bands), got {arr.shape}")
    return arr


def decode_mask(arr: np.ndarray, path: str | Path, mask_values: dict[int, int] | None,
                num_classes: int | None) -> np.ndarray:
    """Class indices (H, W) uint8 from a mask's pixels: 0/255 and 0/1 are binary, else the values are classes.

    mask_values, when given, maps every allowed pixel value to a class; any other value is an error.
    """
    if arr.ndim == 3:
        if arr.shape[2] >= 3 and not ((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()):
            raise DataError(f"{path}: a colour mask; save it as a palette PNG or a single-channel mask of class indices")
        arr = arr[..., 0]
    values = np.unique(arr)
    if mask_values:
        unknown = [int(v) for v in values if int(v) not in mask_values]
        if unknown:
            raise DataError(f"{path}: unknown mask value(s) {unknown[:5]}; source.mask_values maps only "
                            f"{sorted(mask_values)}; add them there")
        lut = np.zeros(int(values.max()) + 1, dtype=np.uint8)
        for v, c in mask_values.items():
            if v < lut.size:
                lut[v] = c
        return lut[arr]
    if set(values.tolist()) <= {0, 255}:
        return (arr == 255).astype(np.uint8)
    if num_classes is not None and values.max() >= num_classes:
        raise DataError(f"{path}: unknown label value {int(values.max())} for num_classes={num_classes} "
                        f"(values found: {values[:10].tolist()}); set num_classes or source.mask_values")
    if num_classes is None and values.max() >= 64:
        raise DataError(f"{path}: mask values {values[:8].tolist()}{'...' if values.size > 8 else ''} look like grey "
                        "levels, not class indices; map them with source.mask_values (e.g. {0: 0, 128: 1, 255: 2})")
    if values.max() > 255:
        raise DataError(f"{path}: label value {int(values.max())} above 255 is not supported; remap the classes")
    return arr.astype(np.uint8)
