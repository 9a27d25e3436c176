"""Space tests run tiny convolutions: one thread is faster than two contended ones on a shared 2-core machine."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
