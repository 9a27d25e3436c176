"""Shared fixtures for the data tests: where the bundled real data lies (skip when it is absent)."""
import os
from pathlib import Path

import pytest


def shared_data() -> Path:
    env = os.environ.get("NASFORGE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def airbus() -> Path:
    root = shared_data() / "airbus-aircraft"
    if not (root / "annotations.csv").exists():
        pytest.skip(f"Airbus sample not found at {root} (set NASFORGE_SHARED_DATA to the shared data folder)")
    return root


@pytest.fixture
def isbi() -> Path:
    root = shared_data() / "isbi-membrane"
    if not (root / "images").is_dir():
        pytest.skip(f"ISBI membrane pairs not found at {root} (set NASFORGE_SHARED_DATA to the shared data folder)")
    return root


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # On a shared 2-core machine, intra-op threads that wait on each other make tiny convolutions 20x slower.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
