"""Shared by the step benchmarks: seconds of each call of a step, with the device synchronised around it."""
from __future__ import annotations

import time
from typing import Callable

import torch


def synchronizer(device: torch.device) -> Callable[[], None]:
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def timed_steps(step: Callable[[], object], steps: int, device: torch.device) -> list[float]:
    """Seconds of each of `steps` calls; CUDA's kernels are queued, so each is bracketed by a synchronise."""
    sync = synchronizer(device)
    times = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return times
