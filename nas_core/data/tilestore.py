"""The tile store: a prepared dataset's tiles as two memory-mapped arrays beside the PNGs (store/images.npy,
N x H x W x C, and store/masks.npy, N x H x W, in the tiles' own dtypes), read with no decoding.

The PNGs and the manifest stay the dataset of record; the store is a cache of them. It is trusted only when its
index (written last, then the directory renamed into place) names the manifest's exact bytes, its files have the
sizes the index records, and its first and last tiles equal their PNGs; anything else is ignored with a warning
that says how to rebuild it (`nasforge data pack DIR`), never half-read.
"""
from __future__ import annotations

import json
import multiprocessing
import shutil
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from nas_core.data.manifest import MANIFEST, sha256_file
from nas_core.data.publish import clean_stale, publish_dir, staging_dir
from nas_core.data.readers import DataError, read_array
from nas_core.rundir import write_json

STORE = "store"
INDEX = "index.json"
FORMAT = "nasforge-tilestore/1"
_ARRAYS = ("images", "masks")
_CHUNK = 64  # tiles per task when several processes fill the store


def _image(path: Path) -> np.ndarray:
    arr = read_array(path)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _reader(key: str):
    return _image if key == "images" else read_array


def _fill(args) -> None:
    """Decode tiles start.. into rows start.. of the (already sized) arrays under `tmp`."""
    root, tmp, start, tiles = args
    out = {key: np.load(tmp / f"{key}.npy", mmap_mode="r+") for key in _ARRAYS}
    for j, t in enumerate(tiles):
        for key, field in zip(_ARRAYS, ("image", "mask")):
            arr = _reader(key)(root / t[field])
            if arr.shape != out[key].shape[1:] or arr.dtype != out[key].dtype:
                raise DataError(f"{root / t[field]}: {arr.shape} {arr.dtype}, but the first tile is "
                                f"{out[key].shape[1:]} {out[key].dtype}; a store needs tiles of one shape and dtype")
            out[key][start + j] = arr
    for arr in out.values():
        arr.flush()


def build_store(root: str | Path, tiles: list[dict], workers: int = 1) -> Path:
    """Write `root`/store from the tiles' PNGs (in manifest order) and return it; replaces an existing store."""
    root = Path(root)
    out = root / STORE
    clean_stale(out)
    tmp = staging_dir(out)
    tmp.mkdir()
    try:
        first = {key: _reader(key)(root / tiles[0][field]) for key, field in zip(_ARRAYS, ("image", "mask"))}
        for key, arr in first.items():
            np.lib.format.open_memmap(tmp / f"{key}.npy", mode="w+", dtype=arr.dtype, shape=(len(tiles), *arr.shape)).flush()
        jobs = [(root, tmp, s, tiles[s:s + _CHUNK]) for s in range(0, len(tiles), _CHUNK)]
        if workers > 1 and len(jobs) > 1:
            # forkserver, as everywhere in nas_core.data: a fork would inherit the caller's threads and sockets.
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
                list(pool.map(_fill, jobs))
        else:
            for job in jobs:
                _fill(job)
        index = {"format": FORMAT, "manifest_sha256": sha256_file(root / MANIFEST), "count": len(tiles)}
        for key, arr in first.items():
            f = tmp / f"{key}.npy"
            index[key] = {"shape": [len(tiles), *arr.shape], "dtype": str(arr.dtype), "bytes": f.stat().st_size,
                          "sha256": sha256_file(f)}
        write_json(tmp / INDEX, index)
        publish_dir(tmp, out)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class TileStore:
    """Row i of the store is tile i of the manifest. Pickles without its arrays (loader workers map their own)."""

    def __init__(self, path: Path, index: dict):
        self.path, self.index = path, index
        self._arrays: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.index["count"]

    def _open(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            self._arrays = {key: np.load(self.path / f"{key}.npy", mmap_mode="r") for key in _ARRAYS}
        return self._arrays

    def image(self, i: int) -> np.ndarray:
        return self._open()["images"][i]

    def mask(self, i: int) -> np.ndarray:
        return self._open()["masks"][i]

    def __getstate__(self):
        return {"path": self.path, "index": self.index, "_arrays": None}


def check_store(root: str | Path, tiles: list[dict]) -> tuple[TileStore | None, str | None]:
    """(the store, None) when `root`/store is complete and fresh, else (None, why not); (None, None): no store."""
    root = Path(root)
    path = root / STORE
    if not path.is_dir():
        return None, None
    try:
        index = json.loads((path / INDEX).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return None, f"its {INDEX} is missing or unreadable ({type(exc).__name__})"
    if index.get("format") != FORMAT:
        return None, f"its {INDEX} is not {FORMAT}"
    if index.get("manifest_sha256") != sha256_file(root / MANIFEST):
        return None, "it was built from another manifest (the dataset was prepared again since)"
    if index.get("count") != len(tiles):
        return None, f"it holds {index.get('count')} tiles, the manifest {len(tiles)}"
    for key in _ARRAYS:
        f, want = path / f"{key}.npy", index.get(key) or {}
        size = f.stat().st_size if f.exists() else None
        if size != want.get("bytes"):
            return None, f"{key}.npy is {size} bytes, its index says {want.get('bytes')} (partial or replaced)"
        try:
            arr = np.load(f, mmap_mode="r")
        except (OSError, ValueError) as exc:
            return None, f"{key}.npy is not a readable array ({exc})"
        if list(arr.shape) != want.get("shape") or str(arr.dtype) != want.get("dtype"):
            return None, f"{key}.npy is {arr.shape} {arr.dtype}, its index says {want.get('shape')} {want.get('dtype')}"
    store = TileStore(path, index)
    # A spot check against the PNGs catches a store whose rows are not the manifest's tiles at almost no cost.
    for i in {0, len(tiles) - 1}:
        if not (np.array_equal(store.image(i), _image(root / tiles[i]["image"]))
                and np.array_equal(store.mask(i), read_array(root / tiles[i]["mask"]))):
            return None, f"its row {i} differs from {tiles[i]['image']}"
    return store, None


def open_store(root: str | Path, tiles: list[dict]) -> TileStore | None:
    """The store the loader reads, or None (PNGs) with a warning when a store is there but cannot be trusted."""
    store, why = check_store(root, tiles)
    if why is not None:
        warnings.warn(f"{Path(root) / STORE}: ignored, {why}; reading the PNGs. Rebuild it with "
                      f"`nasforge data pack {root}`", stacklevel=2)
    return store


def verify_store(root: str | Path, tiles: list[dict]) -> dict | None:
    """The index of a store whose files hash to what the index says (None: no store); DataError otherwise."""
    store, why = check_store(root, tiles)
    if why is not None:
        raise DataError(f"{Path(root) / STORE}: {why}; rebuild it with `nasforge data pack {root}`")
    if store is None:
        return None
    for key in _ARRAYS:
        if sha256_file(store.path / f"{key}.npy") != store.index[key]["sha256"]:
            raise DataError(f"{store.path / (key + '.npy')}: content differs from its index's hash; rebuild it with "
                            f"`nasforge data pack {root}`")
    return store.index
