"""torch.distributed engine: Gloo on CPU, NCCL on GPU; ranks from torchrun, mpirun or srun."""
from __future__ import annotations

import datetime as dt
import os

import torch
import torch.distributed as dist

from nas_core.distributed.engine import Engine
from nas_core.distributed.env import Placement


class TorchEngine(Engine):
    name = "ddp"

    def __init__(self, place: Placement, timeout_s: float):
        super().__init__(place)
        if not dist.is_initialized():
            _rendezvous_from_slurm()
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ.setdefault("MASTER_PORT", "29500")
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            # The timeout bounds every collective: a dead or stalled rank fails the run instead of hanging it.
            dist.init_process_group(backend, rank=place.rank, world_size=place.world_size,
                                    timeout=dt.timedelta(seconds=timeout_s))

    def _allreduce_flat(self, tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor)
        return tensor

    def broadcast_(self, tensors, root: int = 0) -> None:
        for t in tensors:
            dist.broadcast(t.data, src=root)

    def barrier(self) -> None:
        dist.barrier()

    def shutdown(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def _rendezvous_from_slurm() -> None:
    """Under srun (no torchrun), rank 0 of the job listens on the first node of the allocation, on a port
    derived from the job id so two jobs sharing a node do not collide."""
    if "MASTER_ADDR" in os.environ or "SLURM_JOB_NODELIST" not in os.environ:
        return
    import subprocess

    try:
        hosts = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]],
                               capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        hosts = []
    os.environ["MASTER_ADDR"] = hosts[0] if hosts else "127.0.0.1"
    os.environ.setdefault("MASTER_PORT", str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000))
