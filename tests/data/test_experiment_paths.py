"""Paths in an experiment file are taken from the file's folder (as data specs are), whatever the working directory;
a dataset that is not there is named by its field and its absolute path."""
import pytest
import yaml
from typer.testing import CliRunner

from nas_core.cli import app
from nas_core.config import load_experiment, read_experiment_file
from nas_core.data import DataError, build_datasets


def _experiment(folder, data_path: str):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump({"name": "paths", "data": {"source": "prepared", "path": data_path,
                                                              "val_fraction": 0.25, "test_fraction": 0.25}}))
    return path


def test_the_same_file_works_from_another_directory(tmp_path, monkeypatch):
    runner = CliRunner()
    assert runner.invoke(app, ["data", "synth", str(tmp_path / "heli"), "--n", "8", "--size", "16"]).exit_code == 0
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"source": {"kind": "folder", "images": "heli/images", "masks": "heli/masks"},
                                    "output": "prepared", "tile_size": 16}))
    assert runner.invoke(app, ["data", "prepare", str(spec), "--quiet"]).exit_code == 0
    exp = _experiment(tmp_path / "experiments", "../prepared")
    for cwd in (tmp_path / "experiments", tmp_path / "elsewhere"):
        cwd.mkdir(exist_ok=True)
        monkeypatch.chdir(cwd)
        cfg = load_experiment("experiment.yaml" if cwd == exp.parent else exp)
        assert cfg.data.path == str((tmp_path / "prepared").resolve())
        assert sum(len(d) for d in build_datasets(cfg.data, seed=0).values()) == 8
    # A server resolves a file's relative paths in its own data roots: the client sends them as written.
    assert read_experiment_file(exp, resolve=False)["data"]["path"] == "../prepared"


def test_a_missing_dataset_names_the_field_and_the_absolute_path(tmp_path, monkeypatch):
    exp = _experiment(tmp_path / "experiments", "../nowhere")
    monkeypatch.chdir(tmp_path)
    cfg = load_experiment("experiments/experiment.yaml")
    with pytest.raises(DataError) as err:
        build_datasets(cfg.data, seed=0)
    assert str(err.value).startswith(f"data.path: {(tmp_path / 'nowhere').resolve()}: no prepared dataset here")
    r = CliRunner().invoke(app, ["search", str(exp), "--run-dir", str(tmp_path / "run")])
    assert r.exit_code != 0 and f"data.path: {(tmp_path / 'nowhere').resolve()}" in r.output
