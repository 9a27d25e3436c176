"""Fixtures of the baseline tests: a migrated SQLite database and a Redis database of their own, with the worker
launching the real `nasforge search` (no stand-in), and a tiny experiment (32 px tiles, 4 channels, depth 1)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests._home import platform_home

TINY_OPS = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]


def tiny_experiment(method: str = "darts", **search) -> dict:
    return {
        "name": "baseline-test", "seed": 0,
        "space": {"channels": 4, "depth": 1, "cells": {t: {"ops": TINY_OPS, "nodes": 2} for t in ("normal", "down", "up")}},
        "data": {"tile_size": 32, "num_tiles": 16, "batch_size": 4},
        "search": {"method": method, "epochs": 1, "pc_k": 2, "warmup_epochs": 0, "trial_epochs": 1, **search},
        "retrain": {"epochs": 1},
        "baseline": {"random": True, "seeds": 3},
    }


@pytest.fixture(scope="module")
def baseline_home(tmp_path_factory, redis_url):
    """This process pointed at a fresh database, runs root and Redis database; module-scoped so the variables
    never outlive the module."""
    home = tmp_path_factory.mktemp("baseline-home")
    # Database 6: 0 is the platform fixture's, 1 the UI stack's, 7 the backend's stub worker, 8-15 the worker tests'.
    redis_url = redis_url.rsplit("/", 1)[0] + "/6"
    # One torch thread per run: the search and its baselines share the machine's few cores.
    with platform_home(home, redis_url, str(Path(sys.executable).with_name("nasforge")), OMP_NUM_THREADS="1") as h:
        yield h


@pytest.fixture
def launch_search(baseline_home):
    """Queue a continuous search and its random baselines as the API does (backend.crud.launch); returns ids."""
    from backend import crud
    from backend.core.db import session_scope
    from nas_core.config import ExperimentConfig

    def make(**overrides):
        cfg = tiny_experiment()
        for key, value in overrides.items():
            cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
        with session_scope() as s:
            exp = crud.create_experiment(s, ExperimentConfig.model_validate(cfg), owner_id=None)
            run, bases = crud.launch(s, exp)
            return run.id, [b.id for b in bases]

    return make
