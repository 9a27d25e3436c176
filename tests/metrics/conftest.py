"""Fixtures for the metric and retrain tests."""
import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # On a shared 2-core machine, intra-op threads that wait on each other make tiny convolutions 20x slower.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
