"""`predict_scene`: sliding windows blended into a whole-scene prediction that equals tile-by-tile inference
wherever one window alone covers a pixel; georeference in, georeference out; objects as scored polygons."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from shapely.geometry import box, shape

from rasterio.errors import NotGeoreferencedWarning

from nas_core.inference import InferenceError, predict_scene
from nas_core.inference.tiling import window_starts
from nas_core.metrics import connected_components


def _exclusive(starts: list[int], tile: int, i: int, length: int) -> tuple[int, int]:
    """The span of window i that no other window along this axis covers."""
    lo = starts[i - 1] + tile if i > 0 else 0
    hi = starts[i + 1] if i + 1 < len(starts) else length
    return max(lo, starts[i]), min(hi, starts[i] + tile, length)


def _assert_stitched_equals_tiles(predictor, image: np.ndarray, prob: np.ndarray, overlap: int) -> int:
    """Every window's own pixels (those no neighbour overlaps) hold exactly that window's prediction; returns
    how many windows were checked."""
    tile = predictor.tile_size
    h, w = image.shape[:2]
    ys, xs = window_starts(h, tile, tile - overlap), window_starts(w, tile, tile - overlap)
    picks = [(iy, ix) for iy in sorted({0, len(ys) // 2, len(ys) - 1}) for ix in sorted({0, len(xs) // 2, len(xs) - 1})]
    for iy, ix in picks:
        y0, x0 = ys[iy], xs[ix]
        alone = predictor.predict_tiles(image[None, y0:y0 + tile, x0:x0 + tile])[0]
        (a, b), (c, d) = _exclusive(ys, tile, iy, h), _exclusive(xs, tile, ix, w)
        assert b > a and d > c, "the overlap leaves no pixel to one window: the test would check nothing"
        np.testing.assert_allclose(prob[:, a:b, c:d], alone[:, a - y0:b - y0, c - x0:d - x0], atol=1e-5)
    return len(picks)


def _check_outputs(out: dict, prob: np.ndarray, mask: np.ndarray) -> list[dict]:
    assert (mask == prob.argmax(0)).all()
    np.testing.assert_allclose(prob.sum(0), 1.0, atol=1e-4)
    features = json.loads(Path(out["polygons"]).read_text())["features"]
    # One polygon per 8-connected object of the mask, as the object metrics count objects.
    assert len(features) == connected_components(mask > 0)[1]
    assert all(0 <= f["properties"]["score"] <= 1 and f["properties"]["area_px"] > 0 for f in features)
    return features


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore", category=NotGeoreferencedWarning)  # a JPEG extract has no georeference
def test_airbus_scene_stitched_equals_tile_by_tile_away_from_the_seams(predictor, shared_data, tmp_path):
    scenes = sorted((shared_data / "airbus-aircraft" / "images").glob("*.jpg"))
    if not scenes:
        pytest.skip(f"no Airbus scenes in {shared_data / 'airbus-aircraft' / 'images'}")
    scene = scenes[0]
    # Read as predict_scene reads it (GDAL's JPEG decoder rounds a few pixels differently from Pillow's).
    with rasterio.open(scene) as ds:
        image = ds.read().transpose(1, 2, 0)
    assert image.shape[:2] == (2560, 2560)
    out = predict_scene(predictor, scene, tmp_path, overlap=8, batch_size=64, progress=False)
    with rasterio.open(out["probability"]) as ds:
        prob = ds.read()
    mask = np.asarray(Image.open(out["mask_png"]))
    assert _assert_stitched_equals_tiles(predictor, image, prob, overlap=8) == 9
    _check_outputs(out, prob, mask)


def test_geotiff_keeps_its_crs_and_transform_and_polygons_are_in_map_coordinates(predictor, tmp_path):
    rng = np.random.default_rng(0)
    h, w = 150, 130  # not multiples of the tile: the last windows sit flush with the edge
    image = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    transform = from_origin(500000.0, 4600000.0, 0.5, 0.5)
    scene = tmp_path / "scene.tif"
    with rasterio.open(scene, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs="EPSG:32631",
                       transform=transform) as ds:
        ds.write(image.transpose(2, 0, 1))
    out = predict_scene(predictor, scene, tmp_path / "out", overlap=16, progress=False)
    assert "mask_png" not in out
    for key in ("mask", "probability"):
        with rasterio.open(out[key]) as ds:
            assert ds.crs.to_epsg() == 32631 and ds.transform == transform and (ds.height, ds.width) == (h, w)
    with rasterio.open(out["probability"]) as ds:
        prob = ds.read()
        assert ds.descriptions == tuple(predictor.classes)
    with rasterio.open(out["mask"]) as ds:
        mask = ds.read(1)
    _assert_stitched_equals_tiles(predictor, image, prob, overlap=16)
    features = _check_outputs(out, prob, mask)
    collection = json.loads(out["polygons"].read_text())
    assert collection["crs"]["properties"]["name"] == "EPSG:32631"
    bounds = box(500000.0, 4600000.0 - 0.5 * h, 500000.0 + 0.5 * w, 4600000.0)
    assert features, "a random scene gives the tiny network something to call an object"
    assert all(bounds.buffer(1e-6).contains(shape(f["geometry"])) for f in features)


def test_plain_png_gets_a_png_mask_and_polygons_in_pixel_coordinates(predictor, tmp_path):
    rng = np.random.default_rng(1)
    scene = tmp_path / "tile.png"
    Image.fromarray((rng.random((40, 70, 4)) * 255).astype(np.uint8), "RGBA").save(scene)  # alpha is left out
    out = predict_scene(predictor, scene, tmp_path / "out", progress=False)
    mask = np.asarray(Image.open(out["mask_png"]))
    assert mask.shape == (40, 70)
    collection = json.loads(out["polygons"].read_text())
    assert "crs" not in collection
    assert all(box(0, 0, 70, 40).buffer(1e-6).contains(shape(f["geometry"])) for f in collection["features"])


def test_bad_scenes_and_options_are_named(predictor, tmp_path):
    grey = tmp_path / "grey.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(grey)
    with pytest.raises(InferenceError, match="grey.png: 1 band"):
        predict_scene(predictor, grey, tmp_path, progress=False)
    with pytest.raises(InferenceError, match="--overlap 64"):
        predict_scene(predictor, grey, tmp_path, overlap=64, progress=False)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(InferenceError, match="broken.png: cannot read"):
        predict_scene(predictor, broken, tmp_path, progress=False)
    assert not list(tmp_path.glob("*.tif")), "a refused scene leaves no output behind"
