"""Atomic preparation: an interrupted or killed run leaves nothing trusted; a rerun recovers; outputs are kept
unless asked to replace them."""
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from nas_core.data import DataError, PrepareSpec, load_manifest
from nas_core.data.prepare import prepare


def _spec(out, n=6, **kw):
    return PrepareSpec.model_validate({"source": {"kind": "synthetic", "n": n, "size": 64}, "output": str(out),
                                       "tile_size": 32, **kw})


def test_interrupted_run_leaves_nothing(tmp_path):
    def stop(i, n):
        if i == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(_spec(tmp_path / "ds"), progress=False, on_scene=stop)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="no prepared dataset"):
        load_manifest(tmp_path / "ds")


def test_killed_run_is_not_trusted_and_a_rerun_recovers(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"source": {"kind": "synthetic", "n": 200, "size": 128}, "output": "ds",
                                    "tile_size": 32}))
    proc = subprocess.Popen([sys.executable, "-c", "from nas_core.cli import app; app()", "data", "prepare", str(spec),
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        partial = []
        while time.monotonic() < deadline and proc.poll() is None:
            partial = [p for p in tmp_path.glob(".ds.partial-*") if any((p / "images").glob("*.png"))]
            if partial:
                break
            time.sleep(0.05)
        assert partial, "the run should have started writing tiles"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (tmp_path / "ds").exists()
    with pytest.raises(DataError):
        load_manifest(tmp_path / "ds")
    with pytest.raises(DataError, match="no manifest.json"):
        load_manifest(partial[0])
    # A rerun (smaller, to stay quick) cleans the dead run's partial directory and publishes a complete dataset.
    out = prepare(_spec(tmp_path / "ds"), progress=False)
    assert not list(tmp_path.glob(".ds.partial-*"))
    assert load_manifest(out, verify=True)["counts"]["scenes"] == 6


def test_existing_output_is_reused_or_refused(tmp_path):
    out = prepare(_spec(tmp_path / "ds"), progress=False)
    stamp = (out / "manifest.json").stat().st_mtime_ns
    assert prepare(_spec(tmp_path / "ds"), progress=False) == out
    assert (out / "manifest.json").stat().st_mtime_ns == stamp  # same spec and sources: nothing redone
    with pytest.raises(DataError, match="--force"):
        prepare(_spec(tmp_path / "ds", n=5), progress=False)
    prepare(_spec(tmp_path / "ds", n=5), progress=False, force=True)
    assert load_manifest(out)["counts"]["scenes"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_tampered_tile_fails_verification(tmp_path):
    out = prepare(_spec(tmp_path / "ds"), progress=False)
    m = load_manifest(out)
    (out / m["tiles"][0]["mask"]).write_bytes(b"x")
    with pytest.raises(DataError, match="differs from the manifest"):
        load_manifest(out, verify=True)


def test_empty_tile_share_is_capped(tmp_path):
    out = prepare(_spec(tmp_path / "ds", n=12, max_empty_fraction=0.1), progress=False)
    c = load_manifest(out)["counts"]
    assert c["empty_tiles"] <= 0.1 * c["tiles"] + 1e-9
    assert c["empty_tiles_dropped"] > 0 and c["tiles_with_objects"] > 0


def test_parallel_workers_give_the_same_dataset(tmp_path):
    a = load_manifest(prepare(_spec(tmp_path / "a"), progress=False))
    b = load_manifest(prepare(_spec(tmp_path / "b", workers=2), progress=False))
    assert [t["sha256"] for t in a["tiles"]] == [t["sha256"] for t in b["tiles"]]


def test_scale_resizes_image_and_mask_together(tmp_path):
    out = prepare(_spec(tmp_path / "ds", n=2, scale=0.5, tile_size=16), progress=False)
    m = load_manifest(out, verify=True)
    assert m["counts"]["tiles"] == 2 * 4  # 64 px scenes at half size: 32 px, four 16 px tiles each
    from nas_core.data import PreparedTiles

    x, y = PreparedTiles(out)[0]
    assert x.shape == (3, 16, 16) and y.shape == (16, 16)
