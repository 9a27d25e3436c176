"""Where to search first (issue 18): on a plain U-Net trained briefly on synthetic helicopters, with one block made
useless on purpose (its output multiplied by zero, its weights frozen), the sensitivity ranking puts that block
first; the numbers repeat; the CLI writes RUN/sensitivity.json and one valid `sensitivity` event; bad input is
named. Tiny: 32 px tiles, width 4, depth 2, a few fine-tune steps."""
from __future__ import annotations

import copy
import json

import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import ConcatDataset
from typer.testing import CliRunner

from nas_core.cli import app
from nas_core.data.config import DataConfig
from nas_core.data.datasets import build_datasets
from nas_core.data.loader import make_loader
from nas_core.models import PlainUNet
from nas_core.rundir import RunDir
from nas_core.search.event_schema import validate_events
from nas_core.sensitivity import SensitivityError, sensitivity
from nas_core.sensitivity.finetune import fine_tune, fixed_batches
from nas_core.sensitivity.importance import block_importance

USELESS = "down.1"  # the deepest block: only up.0 reads it, so zeroing it leaves every other block in use
DATA = {"source": "synthetic", "tile_size": 32, "num_tiles": 64, "batch_size": 8}


class Zeroed(nn.Module):
    """The block made useless: its output times zero, its weights frozen."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block.requires_grad_(False)

    def forward(self, *args):
        return self.block(*args) * 0


@pytest.fixture(scope="module")
def loaders():
    ds = build_datasets(DataConfig(**DATA), 0)
    train = ConcatDataset([ds["train_w"], ds["train_a"]])
    return make_loader(train, 8, shuffle=True, seed=0, drop_last=True), make_loader(ds["val"], 8, shuffle=False, seed=0)


@pytest.fixture(scope="module")
def trained(loaders):
    """A PlainUNet with USELESS zeroed and frozen, then trained 60 steps (so the other blocks learn without it)."""
    torch.manual_seed(0)
    model = PlainUNet(3, 2, channels=4, depth=2)
    model.set_submodule(USELESS, Zeroed(model.get_submodule(USELESS)))
    return fine_tune(model, fixed_batches(loaders[0], 60), lr=0.1, seed=0, device="cpu")


@pytest.fixture(scope="module")
def result(trained, loaders):
    return sensitivity(trained, *loaders, num_classes=2, steps=6, candidates=2, lr=0.05, seed=0)


def test_the_useless_block_ranks_first(result, trained, loaders):
    assert result["first"] == USELESS and result["order"][0] == USELESS
    blocks = {b["name"]: b for b in result["blocks"]}
    assert set(blocks) == {"stem", "down.0", "down.1", "up.0", "up.1"}  # the head is no cell's place
    useless = blocks[USELESS]
    # No gradient reaches a block whose output is multiplied by zero, and ablating it changes nothing at all.
    assert useless["taylor_share"] == 0.0 and useless["fisher"] == 0.0
    assert useless["ablation"] == "reinitialised" and useless["drop"] == 0.0
    assert useless["score"] > max(b["score"] for n, b in blocks.items() if n != USELESS)
    assert [b["rank"] for b in result["blocks"]] == [1, 2, 3, 4, 5]
    # The network leans on the blocks it uses: the importance is not zero everywhere, and the same block
    # unwrapped (its output used again) has importance of its own.
    assert sum(b["taylor_share"] for b in blocks.values()) == pytest.approx(1.0)
    alive = copy.deepcopy(trained)
    alive.set_submodule(USELESS, alive.get_submodule(USELESS).block)
    assert block_importance(alive, alive.blocks()[:-1], loaders[1], "cpu")[USELESS]["taylor"] > 0


def test_numbers_repeat_and_model_is_untouched(trained, loaders):
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    runs = [sensitivity(trained, *loaders, num_classes=2, steps=2, candidates=1, seed=3) for _ in range(2)]
    assert runs[0] == runs[1]
    assert all(torch.equal(before[k], v) for k, v in trained.state_dict().items())
    other = sensitivity(trained, *loaders, num_classes=2, steps=2, candidates=1, seed=4)
    assert other["blocks"] != runs[0]["blocks"]  # the seed reaches the cells and the re-initialised blocks


def test_a_model_without_named_blocks_is_refused(loaders):
    with pytest.raises(SensitivityError, match="Sequential has no named blocks"):
        sensitivity(nn.Sequential(nn.Conv2d(3, 2, 1)), *loaders, num_classes=2)


def _experiment(tmp_path, channels=4, **space):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "name": "sens", "seed": 0, "data": DATA,
        "space": {"macro": "plain-unet", "depth": 2, "channels": channels, "search_blocks": ["down.1"],
                  "cells": {"down": {"nodes": 2}}, **space}}))
    return path


def test_cli_on_a_run_directory(tmp_path, trained):
    alive = copy.deepcopy(trained)
    alive.set_submodule(USELESS, alive.get_submodule(USELESS).block)
    ckpt = tmp_path / "plain.pt"
    torch.save(alive.state_dict(), ckpt)
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["sensitivity", str(ckpt), "--config", str(_experiment(tmp_path)), "--run-dir",
                                 str(run), "--steps", "2", "--candidates", "1", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "block 5/5 up.1 (up)" in r.output and "search first:" in r.output
    data = json.loads(RunDir(run).sensitivity.read_text())
    assert data["network"] == "PlainUNet" and data["checkpoint"] == str(ckpt) and len(data["blocks"]) == 5
    assert sorted(b["rank"] for b in data["blocks"]) == [1, 2, 3, 4, 5]
    assert all(len(b["cell_ious"]) == 1 and len(b["genotypes"]) == 1 for b in data["blocks"])
    events = [json.loads(line) for line in RunDir(run).events.read_text().splitlines()]
    assert validate_events(events) == 1 and events[0]["kind"] == "sensitivity"
    assert events[0]["payload"]["first"] == data["first"] and events[0]["payload"]["order"] == data["order"]
    assert events[0]["payload"]["file"] == str(RunDir(run).sensitivity)


@pytest.mark.parametrize("case, expect", [
    ("missing", "CHECKPOINT: checkpoint {ckpt}: no such file"),
    ("mismatch", "CHECKPOINT: checkpoint {ckpt} does not fit PlainUNet"),
    ("no_init_from", "space.init_from is empty and no CHECKPOINT was given"),
    ("cells", "space.macro is 'unet', a network of cells"),
])
def test_cli_bad_input_is_named(tmp_path, case, expect):
    ckpt = tmp_path / "net.pt"
    if case == "mismatch":
        torch.save(PlainUNet(3, 2, channels=8, depth=2).state_dict(), ckpt)
    exp = _experiment(tmp_path)
    if case == "cells":
        exp.write_text(yaml.safe_dump({"name": "cells", "data": DATA}))
    args = ["sensitivity", "--config", str(exp)] + ([] if case == "no_init_from" else [str(ckpt)])
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    assert expect.format(ckpt=ckpt) in r.output


def test_cli_checkpoint_outside_the_platform_roots(tmp_path, monkeypatch):
    roots = tmp_path / "roots"
    roots.mkdir()
    monkeypatch.setenv("NASFORGE_DATA_ROOTS", str(roots))
    monkeypatch.delenv("NASFORGE_RUNS_DIR", raising=False)
    ckpt = tmp_path / "net.pt"
    torch.save(PlainUNet(3, 2, channels=4, depth=2).state_dict(), ckpt)
    r = CliRunner().invoke(app, ["sensitivity", str(ckpt), "--config", str(_experiment(tmp_path))])
    assert r.exit_code == 2 and "CHECKPOINT: must lie inside an allowed data root" in r.output


def test_cli_on_a_hand_designed_baseline_run(tmp_path):
    """`--run-dir RUN` alone: a baseline run made by the real `nasforge search` (run.network), measured with its
    retrained weights and its data; the JSON carries the network and each block's channels for a partial search.
    A run of cells is refused, naming which runs this applies to."""
    net = {"name": "plain-unet", "channels": 4, "depth": 2}
    exp = {"name": "hd", "seed": 0, "data": {**DATA, "num_tiles": 32}, "retrain": {"epochs": 1},
           "run": {"kind": "baseline", "network": net}}
    (tmp_path / "run").mkdir()
    config = tmp_path / "run" / "config.yaml"
    config.write_text(yaml.safe_dump(exp))
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["search", str(config), "--run-dir", str(run), "--threads", "1", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["sensitivity", "--run-dir", str(run), "--steps", "1", "--candidates", "1",
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    data = json.loads(RunDir(run).sensitivity.read_text())
    assert data["network_config"] == {**net, "backbone": {}} and data["checkpoint"] == str(RunDir(run).retrained)
    blocks = {b["name"]: b for b in data["blocks"]}
    assert set(blocks) == {"stem", "down.0", "down.1", "up.0", "up.1"}
    assert (blocks["down.1"]["out_channels"], blocks["up.1"]["out_channels"]) == (16, 4)
    assert all(b["out_channels"] % b["cell_nodes"] == 0 for b in data["blocks"])
    events = [json.loads(line) for line in RunDir(run).events.read_text().splitlines()]
    assert validate_events(events) == len(events) and events[-1]["kind"] == "sensitivity"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    exp["run"] = {"kind": "search"}
    config.write_text(yaml.safe_dump(exp))
    r = CliRunner().invoke(app, ["sensitivity", "--run-dir", str(run)])
    assert r.exit_code == 2 and "run.network is not set" in r.output and "baseline.networks" in r.output
