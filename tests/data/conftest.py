"""Shared fixtures for the data tests: the bundled real data sets (skipped with a reason when absent)."""
from pathlib import Path

import pytest


@pytest.fixture
def airbus(shared_data) -> Path:
    root = shared_data / "airbus-aircraft"
    if not (root / "annotations.csv").exists():
        pytest.skip(f"Airbus sample not found at {root} (set NASFORGE_SHARED_DATA to the shared data folder)")
    return root


@pytest.fixture
def isbi(shared_data) -> Path:
    root = shared_data / "isbi-membrane"
    if not (root / "images").is_dir():
        pytest.skip(f"ISBI membrane pairs not found at {root} (set NASFORGE_SHARED_DATA to the shared data folder)")
    return root
