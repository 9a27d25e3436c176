"""The run's network in use over the API, on the platform's finished tiny search (tests/conftest.py remote_run):
predictions on uploaded tiles and on a test scene come back as overlays that match the network's own answer;
uploads that are not small PNG/JPEG images are refused by name; the export is built once and cached."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from nas_core.inference import load_model, render_overlay

pytestmark = pytest.mark.slow


def _png(arr: np.ndarray, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def _image(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


@pytest.fixture(scope="module")
def api(platform, remote_run):
    run_id = remote_run["run_id"]
    client = httpx.Client(base_url=f"{platform['url']}/api/runs/{run_id}",
                          headers={"Authorization": f"Bearer {remote_run['token']}"}, timeout=120)
    run = httpx.get(f"{platform['url']}/api/runs/{run_id}", headers=client.headers).json()
    assert run["status"] == "succeeded", run
    yield client, run["run_dir"]
    client.close()


def test_uploaded_tiles_come_back_as_the_networks_overlays(api):
    client, run_dir = api
    predictor = load_model(run_dir)
    t = predictor.tile_size
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, (t, t, 3), dtype=np.uint8)
    wide = rng.integers(0, 256, (t + 5, 2 * t, 3), dtype=np.uint8)  # not a multiple of the tile: padded windows
    r = client.post("/predict", json={"tiles": [{"name": "a.png", "data": _png(tile)},
                                                {"name": "b.jpg", "data": _png(wide, "JPEG")}]})
    assert r.status_code == 200, r.text
    got = r.json()
    assert [o["name"] for o in got["overlays"]] == ["a.png", "b.jpg"] and got["classes"] == predictor.classes
    mask = predictor.predict_tiles(tile[None])[0].argmax(0)
    np.testing.assert_array_equal(_image(got["overlays"][0]["png"]), render_overlay(tile, None, mask))
    assert got["overlays"][0]["foreground"] == pytest.approx(float((mask > 0).mean()))
    assert _image(got["overlays"][1]["png"]).shape == (t + 5, 2 * t, 3)

    scenes = client.get("/test-scenes").json()
    r = client.post("/predict", json={"scene": scenes[0]})
    assert r.status_code == 200, r.text
    assert r.json()["overlays"] and all(o["truth"] for o in r.json()["overlays"])


@pytest.mark.parametrize("body, status, says", [
    ({"tiles": [{"name": "x.gif", "data": "R0lGODlhAQABAAAAACw="}]}, 422, "not a PNG or JPEG image"),
    ({"tiles": [{"name": "x", "data": "%%%"}]}, 422, "not base64"),
    ({"tiles": [{"name": "big.png", "data": _png(np.zeros((1100, 8, 3), np.uint8))}]}, 413, "at most 1024 px a side"),
    ({"tiles": [{"name": f"t{i}", "data": "AA=="} for i in range(9)]}, 422, "tiles"),
    ({"tiles": [{"name": "../../etc/passwd", "data": "AA=="}]}, 422, "name"),
    ({}, 422, "give either tiles"),
    ({"scene": "no-such-scene"}, 422, "is not in this run's test split"),
])
def test_bad_uploads_are_refused_by_name(api, body, status, says):
    client, _ = api
    r = client.post("/predict", json=body)
    assert r.status_code == status and says in r.text, r.text


def test_the_export_is_built_once_and_runs_like_the_network(api, tmp_path):
    import torch

    client, run_dir = api
    first = client.get("/export", params={"format": "torchscript"})
    assert first.status_code == 200, first.text
    assert 'filename="nasforge-run-' in first.headers["content-disposition"]
    built = sorted((p.name, p.stat().st_mtime_ns) for p in (Path(run_dir) / "exports" / "torchscript").iterdir())
    again = client.get("/export", params={"format": "torchscript"})
    assert again.content == first.content  # served from exports/, not built again:
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (Path(run_dir) / "exports" / "torchscript").iterdir()) == built
    (tmp_path / "m.pt").write_bytes(first.content)
    module = torch.jit.load(str(tmp_path / "m.pt"))
    predictor = load_model(run_dir)
    x = torch.rand(2, predictor.in_channels, predictor.tile_size, predictor.tile_size)
    with torch.no_grad():
        probs = module(x).numpy()
    np.testing.assert_allclose(probs, predictor.predict_tiles(x.permute(0, 2, 3, 1).numpy()), atol=1e-4)
    assert client.get("/export", params={"format": "pickle"}).status_code == 422
