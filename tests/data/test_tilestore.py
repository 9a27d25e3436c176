"""The tile store: `nasforge data prepare` writes it beside the PNGs, the loader reads it when it is fresh, and
it gives exactly the PNG tiles' arrays; a partial, stale or corrupted store is never read."""
import json
import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nas_core.cli import app
from nas_core.data import PrepareSpec, PreparedTiles, load_manifest
from nas_core.data.datasets import _View
from nas_core.data.loader import make_loader
from nas_core.data.prepare import prepare
from nas_core.data.readers import read_array
from nas_core.data.tilestore import STORE, check_store, verify_store
from nas_core.rundir import write_json


def _spec(out, **kw):
    return PrepareSpec.model_validate({"source": {"kind": "synthetic", "n": 4, "size": 64}, "output": str(out),
                                       "tile_size": 32, **kw})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare(_spec(tmp_path_factory.mktemp("store") / "ds"), progress=False)


def _same_items(a, b):
    assert len(a) == len(b)
    for i in range(len(a)):
        (xa, ya), (xb, yb) = a[i], b[i]
        assert torch.equal(xa, xb) and torch.equal(ya, yb), f"tile {i} differs"


def test_store_returns_exactly_the_png_tiles(prepared):
    m = load_manifest(prepared)
    store, why = check_store(prepared, m["tiles"])
    assert why is None and store is not None and len(store) == len(m["tiles"])
    for i, t in enumerate(m["tiles"]):
        assert np.array_equal(store.image(i), read_array(prepared / t["image"]))
        assert np.array_equal(store.mask(i), read_array(prepared / t["mask"]))
        assert store.image(i).dtype == np.uint8 and store.mask(i).dtype == np.uint8
    with_store, pngs = PreparedTiles(prepared), PreparedTiles(prepared, use_store=False)
    assert with_store.store is not None and pngs.store is None
    _same_items(with_store, pngs)


def test_single_channel_scenes_through_the_store(isbi, tmp_path):
    spec = PrepareSpec.model_validate({"source": {"kind": "folder", "images": str(isbi / "images"),
                                                  "masks": str(isbi / "masks"), "limit": 1},
                                       "output": str(tmp_path / "isbi"), "tile_size": 128})
    out = prepare(spec, progress=False)
    ds = PreparedTiles(out)
    assert ds.store is not None and ds.store.image(0).shape == (128, 128, 1)
    _same_items(ds, PreparedTiles(out, use_store=False))


def _copy(prepared, tmp_path):
    import shutil

    dst = tmp_path / "ds"
    shutil.copytree(prepared, dst)
    return dst


def _ignored(path, match):
    with pytest.warns(UserWarning, match=match):
        ds = PreparedTiles(path)
    assert ds.store is None  # fell back to the PNGs
    return ds


def test_partial_store_is_ignored_and_pack_rebuilds_it(prepared, tmp_path):
    ds = _copy(prepared, tmp_path)
    f = ds / STORE / "images.npy"
    f.write_bytes(f.read_bytes()[:-100])  # a copy cut short
    _ignored(ds, "images.npy is .* bytes")
    r = CliRunner().invoke(app, ["data", "verify", str(ds)])
    assert r.exit_code == 2 and "data pack" in r.output
    (ds / STORE / "index.json").unlink()  # killed before the index was written
    _ignored(ds, "index.json is missing")
    r = CliRunner().invoke(app, ["data", "pack", str(ds)])
    assert r.exit_code == 0, r.output
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert PreparedTiles(ds).store is not None
    assert CliRunner().invoke(app, ["data", "verify", str(ds)]).exit_code == 0


def test_stale_or_corrupted_store_is_detected(prepared, tmp_path):
    ds = _copy(prepared, tmp_path)
    m = load_manifest(ds)
    write_json(ds / "manifest.json", {**m, "created": "2000-01-01T00:00:00+00:00"}, indent=1)  # prepared again
    _ignored(ds, "another manifest")
    CliRunner().invoke(app, ["data", "pack", str(ds)])
    arr = np.load(ds / STORE / "images.npy", mmap_mode="r+")
    arr[0, 0, 0, 0] ^= 0xFF  # row 0 no longer its PNG: the loader's spot check sees it
    arr.flush()
    _ignored(ds, "row 0 differs")
    CliRunner().invoke(app, ["data", "pack", str(ds)])
    arr = np.load(ds / STORE / "images.npy", mmap_mode="r+")
    arr[1, 5, 5, 1] ^= 0xFF  # a middle row: only the hash sees it, so `data verify` does
    arr.flush()
    from nas_core.data import DataError

    with pytest.raises(DataError, match="content differs"):
        verify_store(ds, m["tiles"])
    index = json.loads((ds / STORE / "index.json").read_text())
    assert index["images"]["shape"] == [len(m["tiles"]), 32, 32, 3]


def test_one_pass_and_two_pass_preparation_agree(tmp_path):
    a = load_manifest(prepare(_spec(tmp_path / "a", store=False), progress=False))
    b = load_manifest(prepare(_spec(tmp_path / "b", store=False), progress=False, fuse=False))
    assert not (tmp_path / "a" / STORE).exists()
    assert a["tiles"] == b["tiles"]
    for key in ("counts", "class_pixels", "image_stats", "source"):
        assert a[key] == b[key], key


def test_persistent_workers_follow_the_epoch(prepared):
    base = PreparedTiles(prepared)
    view = _View(base, range(len(base)), None, None, augment=True, seed=3)
    serial = make_loader(view, 4, shuffle=True, seed=1, workers=0)
    persistent = make_loader(view, 4, shuffle=True, seed=1, workers=1, persistent=True)
    assert persistent.persistent_workers and not persistent.pin_memory
    for epoch in range(2):
        got = []
        for loader in (serial, persistent):
            loader.sampler.set_epoch(epoch)
            got.append(torch.cat([b[0] for b in loader]))
        assert torch.equal(got[0], got[1]), f"epoch {epoch}: a persistent worker augmented with a stale epoch"
