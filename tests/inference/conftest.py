"""One tiny searched run for all the inference tests, made by the real `nasforge search` (search, decode, retrain,
evaluate): 64 px tiles, 4 channels, depth 1, cells of skip connections so a whole 2560 px scene predicts in
seconds on two cores; and a second prepared dataset made by the real `nasforge data prepare` code."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# Cells of skip connections: the network still has its stem, preprocessing convolutions, BN, resampling and head,
# which is what export and normalisation must carry, and a 2560 px scene costs a few CPU seconds.
FREE_OPS = ["none", "skip_connect"]
TILE = 64


def tiny_experiment() -> dict:
    return {
        "name": "inference-test", "seed": 0,
        "space": {"channels": 4, "depth": 1, "cells": {t: {"ops": FREE_OPS, "nodes": 2} for t in ("normal", "down", "up")}},
        "data": {"tile_size": TILE, "num_tiles": 8, "batch_size": 4},
        "search": {"epochs": 1, "pc_k": 2, "warmup_epochs": 0},
        "retrain": {"epochs": 1},
    }


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inference")
    exp = root / "tiny.yaml"
    exp.write_text(yaml.safe_dump(tiny_experiment()))
    run = root / "run"
    nasforge = str(Path(sys.executable).with_name("nasforge"))
    proc = subprocess.run([nasforge, "search", str(exp), "--run-dir", str(run), "--threads", "1"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


@pytest.fixture(scope="session")
def second_dataset(tmp_path_factory) -> Path:
    """Synthetic helicopter scenes of another seed, prepared as a user prepares a dataset (manifest and all)."""
    from nas_core.data.prepare import prepare
    from nas_core.data.spec import PrepareSpec

    out = tmp_path_factory.mktemp("second") / "helicopters-seed5"
    spec = PrepareSpec.model_validate({"source": {"kind": "synthetic", "n": 3, "size": 192}, "output": str(out),
                                       "tile_size": TILE, "seed": 5})
    return prepare(spec, progress=False)


@pytest.fixture(scope="session")
def predictor(run_dir):
    from nas_core.inference import load_model

    return load_model(run_dir)
