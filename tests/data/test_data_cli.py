"""`nasforge data synth` writes a folder that `nasforge data prepare` takes back; bad specs fail with exit code 2."""
import numpy as np
import yaml
from PIL import Image
from typer.testing import CliRunner

from nas_core.cli import app
from nas_core.data import HelicopterTiles, load_manifest


def test_synth_then_prepare_round_trip(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["data", "synth", str(tmp_path / "heli"), "--n", "3", "--size", "32", "--seed", "2"])
    assert r.exit_code == 0, r.output
    mask = np.asarray(Image.open(tmp_path / "heli" / "masks" / "heli_2_00001.png"))
    assert set(np.unique(mask)) <= {0, 255}
    np.testing.assert_array_equal(mask // 255, HelicopterTiles(3, 32, seed=2)[1][1].numpy())
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"source": {"kind": "folder", "images": "heli/images", "masks": "heli/masks"},
                                    "output": "prepared", "tile_size": 32}))
    r = runner.invoke(app, ["data", "prepare", str(spec), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "3 tiles from 3 scenes" in r.output
    assert load_manifest(tmp_path / "prepared")["counts"]["scenes"] == 3


def test_bad_spec_is_exit_code_2_with_the_field(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"source": {"kind": "folder", "images": "x"}, "output": "o", "tile_size": 32}))
    r = CliRunner().invoke(app, ["data", "prepare", str(spec)])
    assert r.exit_code == 2
    assert "source.masks is required" in r.output and "spec.yaml" in r.output


def test_example_specs_are_valid():
    from pathlib import Path

    from nas_core.data import load_spec

    examples = sorted((Path(__file__).resolve().parents[2] / "examples" / "data").glob("*.yaml"))
    assert len(examples) >= 3
    for f in examples:
        spec = load_spec(f)
        assert Path(spec.output).is_absolute()
