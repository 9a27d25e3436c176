"""Bad input: each problem is a clear error naming the file and the problem. Also the rasterisation convention,
GeoJSON labels, TIFF scenes and palette masks, on small files written here."""
import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from nas_core.data import DataError, PreparedTiles, PrepareSpec, load_manifest
from nas_core.data.polygons import Label, rasterise
from nas_core.data.prepare import prepare


def _folder(tmp_path, n=2, size=32, mask_size=None, value=255):
    (tmp_path / "img").mkdir(parents=True)
    (tmp_path / "msk").mkdir()
    for i in range(n):
        Image.fromarray(np.full((size, size, 3), 100, np.uint8)).save(tmp_path / "img" / f"s{i}.png")
        m = np.zeros((mask_size or size,) * 2, np.uint8)
        m[2:6, 2:6] = value
        Image.fromarray(m).save(tmp_path / "msk" / f"s{i}.png")
    return tmp_path


def _spec(tmp_path, source, **kw):
    return PrepareSpec.model_validate({"source": source, "output": str(tmp_path / "out"), "tile_size": 16, **kw})


def _run(spec):
    with pytest.raises(DataError) as info:
        prepare(spec, progress=False)
    assert not (spec.output and __import__("pathlib").Path(spec.output).exists())
    return str(info.value)


def test_box_convention():
    mask, drawn, _ = rasterise([Label("s", [[(3, 4), (9, 4), (9, 12), (3, 12)]], "a", "t")], 20, 20, {"a": 1}, "error",
                               __import__("pathlib").Path("s.png"))
    expected = np.zeros((20, 20), np.uint8)
    expected[4:13, 3:10] = 1  # rows 4..12, columns 3..9 inclusive
    np.testing.assert_array_equal(mask, expected)
    assert drawn == 1


def test_mismatched_sizes(tmp_path):
    d = _folder(tmp_path, mask_size=30)
    msg = _run(_spec(d, {"kind": "folder", "images": str(d / "img"), "masks": str(d / "msk")}))
    assert "s0.png" in msg and "30x30" in msg and "32x32" in msg


def test_missing_mask(tmp_path):
    d = _folder(tmp_path)
    (d / "msk" / "s1.png").unlink()
    msg = _run(_spec(d, {"kind": "folder", "images": str(d / "img"), "masks": str(d / "msk")}))
    assert "s1.png" in msg and "no mask" in msg


def test_unreadable_file(tmp_path):
    d = _folder(tmp_path)
    (d / "msk" / "s0.png").write_bytes(b"not a png at all")
    msg = _run(_spec(d, {"kind": "folder", "images": str(d / "img"), "masks": str(d / "msk")}))
    assert "s0.png" in msg and "cannot read" in msg


def test_unknown_mask_value(tmp_path):
    d = _folder(tmp_path, value=7)
    msg = _run(_spec(d, {"kind": "folder", "images": str(d / "img"), "masks": str(d / "msk"),
                         "mask_values": {0: 0, 255: 1}}))
    assert "s0.png" in msg and "[7]" in msg and "mask_values" in msg
    msg = _run(_spec(d, {"kind": "folder", "images": str(d / "img"), "masks": str(d / "msk")}, num_classes=3))
    assert "unknown label value 7" in msg
    d2 = _folder(tmp_path / "grey", value=128)
    msg = _run(_spec(d2, {"kind": "folder", "images": str(d2 / "img"), "masks": str(d2 / "msk")}))
    assert "s0.png" in msg and "grey" in msg and "mask_values" in msg


def test_duplicate_stems(tmp_path):
    d = _folder(tmp_path)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(d / "img" / "s0.jpg")
    msg = _run(_spec(d, {"kind": "folder", "images": str(d / "img"), "masks": str(d / "msk")}))
    assert "same stem" in msg and "s0" in msg


def test_empty_dataset(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    msg = _run(_spec(tmp_path, {"kind": "folder", "images": str(tmp_path / "img"), "masks": str(tmp_path / "msk")}))
    assert "img" in msg and "no images found" in msg


def _polygon_source(tmp_path, rows):
    (tmp_path / "img").mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "img" / "a.jpg")
    lines = ["id,image_id,geometry,class"] + [f'{i},{img},"{geom}",{cls}' for i, (img, geom, cls) in enumerate(rows)]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return {"kind": "polygons", "images": str(tmp_path / "img"), "labels": str(tmp_path / "labels.csv")}


def test_polygon_outside_the_image(tmp_path):
    src = _polygon_source(tmp_path, [("a.jpg", "[(30, 30), (45, 30), (45, 38), (30, 38)]", "plane")])
    msg = _run(_spec(tmp_path, src))
    assert "labels.csv row 2" in msg and "(45, 30)" in msg and "outside: clip" in msg
    out = prepare(_spec(tmp_path, {**src, "outside": "clip"}, tile_size=40), progress=False)
    assert load_manifest(out)["class_pixels"][1] == 10 * 9  # columns 30..39, rows 30..38


def test_unknown_label_value(tmp_path):
    src = _polygon_source(tmp_path, [("a.jpg", "[(1, 1), (5, 1), (5, 5)]", "Helicopter")])
    msg = _run(_spec(tmp_path, {**src, "classes": {"plane": 1}}))
    assert "row 2" in msg and "'Helicopter'" in msg and "classes" in msg


def test_label_for_a_missing_scene(tmp_path):
    src = _polygon_source(tmp_path, [("b.jpg", "[(1, 1), (5, 1), (5, 5)]", "plane")])
    msg = _run(_spec(tmp_path, src))
    assert "'b.jpg'" in msg and "row 2" in msg


def test_geojson_labels_and_tiff_scene(tmp_path):
    (tmp_path / "img").mkdir()
    scene = np.random.default_rng(0).integers(0, 4000, (4, 24, 24)).astype(np.uint16)  # band-first GeoTIFF
    tifffile.imwrite(tmp_path / "img" / "g.tif", scene, photometric="minisblack")
    feats = [{"type": "Feature", "properties": {"label": "roof"},
              "geometry": {"type": "Polygon", "coordinates": [[[2, 2], [7, 2], [7, 5], [2, 5], [2, 2]]]}},
             {"type": "Feature", "properties": {"label": "pool"},
              "geometry": {"type": "Polygon", "coordinates": [[[10, 10], [12, 10], [12, 12], [10, 12]]]}}]
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "g.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    spec = _spec(tmp_path, {"kind": "polygons", "images": str(tmp_path / "img"), "labels": str(tmp_path / "labels"),
                            "label_column": "label"}, tile_size=24)
    out = prepare(spec, progress=False)
    m = load_manifest(out, verify=True)
    assert m["classes"] == {"background": 0, "pool": 1, "roof": 2} and m["num_classes"] == 3
    assert m["class_pixels"][1:] == [9, 24]
    assert m["tiles"][0]["image"].endswith(".tif")
    x, y = PreparedTiles(out)[0]
    assert x.shape == (4, 24, 24) and y[2:6, 2:8].eq(2).all()
    np.testing.assert_allclose(x.numpy(), scene / 65535.0, rtol=1e-6)


def test_palette_mask(tmp_path):
    d = _folder(tmp_path, n=1)
    m = np.zeros((32, 32), np.uint8)
    m[0:4, 0:8] = 2
    pal = Image.fromarray(m, mode="P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    pal.save(d / "msk" / "s0.png")
    out = prepare(_spec(d, {"kind": "folder", "images": str(d / "img"), "masks": str(d / "msk")}), progress=False)
    assert load_manifest(out)["class_pixels"][2] == 32
