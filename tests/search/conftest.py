"""Tiny experiments for the search tests: 32 px tiles, 4 channels, depth 1, two nodes per cell, 2 epochs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas_core.config import parse_experiment

TINY_OPS = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]


def tiny_experiment(**search) -> dict:
    return {
        "name": "tiny", "seed": 0,
        "space": {"channels": 4, "depth": 1,
                  "cells": {t: {"ops": TINY_OPS, "nodes": 2} for t in ("normal", "down", "up")}},
        "data": {"tile_size": 32, "num_tiles": 16, "batch_size": 4},
        "search": {"epochs": 2, "pc_k": 2, "warmup_epochs": 0, **search},
        "retrain": {"epochs": 1},
    }


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture
def tiny():
    return lambda **search: parse_experiment(tiny_experiment(**search))
