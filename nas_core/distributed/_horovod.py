"""Horovod engine (built by scripts/build-horovod.sh): Gloo or MPI controller, NCCL on GPU."""
from __future__ import annotations

import torch

from nas_core.distributed.engine import Engine
from nas_core.distributed.env import Placement


class HorovodEngine(Engine):
    name = "horovod"

    def __init__(self, timeout_s: float):
        try:
            import horovod.torch as hvd
        except ImportError as exc:
            raise RuntimeError("distributed.engine horovod: Horovod is not installed; run scripts/build-horovod.sh "
                               f"(make horovod) ({exc})") from None
        hvd.init()
        self.hvd = hvd
        super().__init__(Placement(hvd.rank(), hvd.size(), hvd.local_rank()))
        self.timeout_s = timeout_s

    def _allreduce_flat(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.hvd.allreduce(tensor, op=self.hvd.Sum)

    def broadcast_(self, tensors, root: int = 0) -> None:
        for i, t in enumerate(tensors):
            t.data.copy_(self.hvd.broadcast(t.data, root_rank=root, name=f"nasforge.bcast.{i}"))

    def barrier(self) -> None:
        self.hvd.allreduce(torch.zeros(1), name="nasforge.barrier")

    def shutdown(self) -> None:
        self.hvd.shutdown()
