"""Preparation of small subsets of the bundled real data: Airbus scenes with polygons, ISBI image/mask pairs."""
import ast
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from nas_core.data import PrepareSpec, PreparedTiles, load_manifest
from nas_core.data.prepare import prepare
from nas_core.data.readers import read_array

CLI = [sys.executable, "-c", "from nas_core.cli import app; app()"]  # the `nasforge` command, as a real process


def _reassemble(root: Path, manifest: dict, scene: str, key: str, shape) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    for t in manifest["tiles"]:
        if t["scene"] == scene:
            a = read_array(root / t[key])
            h, w = min(a.shape[0], shape[0] - t["y"]), min(a.shape[1], shape[1] - t["x"])
            out[t["y"]:t["y"] + h, t["x"]:t["x"] + w] = a[:h, :w]
    return out


def test_airbus_masks_cover_the_labelled_boxes_exactly(airbus, tmp_path):
    spec = PrepareSpec.model_validate({
        "source": {"kind": "polygons", "images": str(airbus / "images"), "labels": str(airbus / "annotations.csv"),
                   "classes": {"Airplane": 1, "Truncated_airplane": 1}, "outside": "clip", "limit": 2},
        "output": str(tmp_path / "airbus"), "tile_size": 640,
    })
    out = prepare(spec, progress=False)
    m = load_manifest(out, verify=True)
    scenes = sorted({t["scene"] for t in m["tiles"]})
    assert m["counts"]["scenes"] == 2 and m["counts"]["tiles"] == 2 * 16 == len(m["tiles"])
    with open(airbus / "annotations.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["image_id"] in scenes]
    assert m["source"]["polygons"] + m["source"]["polygons_dropped"] == len(rows)
    for scene in scenes:
        w, h = Image.open(airbus / "images" / scene).size
        expected = np.zeros((h, w), np.uint8)
        for r in rows:
            if r["image_id"] == scene:
                pts = np.array(ast.literal_eval(r["geometry"]))
                x0, y0 = np.clip(pts.min(0), 0, [w - 1, h - 1])
                x1, y1 = np.clip(pts.max(0), 0, [w - 1, h - 1])
                expected[y0:y1 + 1, x0:x1 + 1] = 1  # boxes are inclusive of their corner pixels
        got = _reassemble(out, m, scene, "mask", (h, w))
        assert expected.any()
        np.testing.assert_array_equal(got, expected)
        img = _reassemble(out, m, scene, "image", (h, w, 3))
        np.testing.assert_array_equal(img, np.asarray(Image.open(airbus / "images" / scene).convert("RGB")))
    assert abs(sum(m["class_balance"]) - 1) < 1e-4 and 0 < m["class_balance"][1] < 0.5
    assert len(m["source"]["sha256"]) == 3  # two scenes and the labels file
    ds = PreparedTiles(out)
    x, y = ds[0]
    assert x.shape == (3, 640, 640) and y.shape == (640, 640) and x.max() <= 1


def test_isbi_pairs_through_the_cli(isbi, tmp_path):
    spec_file = tmp_path / "isbi.yaml"
    spec_file.write_text(yaml.safe_dump({
        "source": {"kind": "folder", "images": str(isbi / "images"), "masks": str(isbi / "masks"), "limit": 3},
        "output": "prepared", "tile_size": 192, "overlap": 32,
    }))
    r = subprocess.run([*CLI, "data", "prepare", str(spec_file), "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "prepared"  # relative to the spec file
    m = load_manifest(out, verify=True)
    # 512 px with 192 px tiles every 160 px: starts 0, 160, 320 -> 9 tiles per image
    assert m["counts"] == {**m["counts"], "scenes": 3, "tiles": 27}
    assert m["num_classes"] == 2 and m["image_stats"]["channels"] == 1
    pixels = np.concatenate([read_array(out / t["image"]).ravel() / 255.0 for t in m["tiles"]])
    assert m["image_stats"]["mean"][0] == pytest.approx(pixels.mean(), abs=1e-9)
    assert m["image_stats"]["std"][0] == pytest.approx(pixels.std(), abs=1e-9)
    names = sorted({t["scene"] for t in m["tiles"]})
    for name in names:
        truth = (np.asarray(Image.open(isbi / "masks" / name)) == 255).astype(np.uint8)
        np.testing.assert_array_equal(_reassemble(out, m, name, "mask", truth.shape), truth)
    r = subprocess.run([*CLI, "data", "verify", str(out)], capture_output=True, text=True)
    assert r.returncode == 0 and "27 tiles verified" in r.stdout
