"""One switch for data-parallel search: `distributed.engine` none | ddp | horovod, behind one small interface.

The search loop shards every batch by rank, then calls `average_gradients` after each backward (weights and
architecture parameters alike, so first- and second-order DARTS, PC-DARTS and GAEA all work unchanged), and
`mean` for metrics. Only rank 0 writes events and checkpoints.
"""
from __future__ import annotations

from typing import Iterable

import torch

from nas_core.distributed.env import Placement, placement


class Engine:
    """Single process: every collective is the identity."""

    name = "none"

    def __init__(self, place: Placement | None = None):
        self.place = place or Placement()
        self.heartbeats = None
        self.bytes_communicated = 0  # payload of gradient all-reduces, for the benchmark

    def watch(self, directory, timeout_s: float = 60.0) -> None:
        """Record this rank's progress under `directory`; a collective that waits longer than `timeout_s`
        ends the process with an error naming the rank that fell behind (whatever the engine's own timeouts)."""
        if self.world_size > 1:
            from nas_core.distributed.watchdog import Heartbeats, Watchdog

            self.heartbeats = Heartbeats(directory, self.rank, self.world_size)
            self.watchdog = Watchdog(self.heartbeats, timeout_s)

    def step_done(self, step: int) -> None:
        if self.heartbeats is not None:
            self.heartbeats.beat(step)

    def _collective(self, fn, *args):
        if self.heartbeats is None:
            return fn(*args)
        with self.watchdog.waiting():
            try:
                return fn(*args)
            except RuntimeError as exc:
                raise self.heartbeats.failure(exc) from exc

    @property
    def rank(self) -> int:
        return self.place.rank

    @property
    def world_size(self) -> int:
        return self.place.world_size

    @property
    def is_main(self) -> bool:
        return self.place.rank == 0

    def allreduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Differentiable sum over ranks (SyncBatchNorm's statistics go through it)."""
        if self.world_size == 1:
            return tensor
        self.bytes_communicated += tensor.numel() * tensor.element_size()
        return self._collective(_SumOverRanks.apply, tensor, self)

    def reduce_grads(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """The mean of each gradient over ranks (the search loop's `reduce_grads` hook)."""
        if self.world_size == 1 or not grads:
            return grads
        # One flat buffer, one collective: fewer, larger messages than one per tensor.
        flat = torch.cat([g.reshape(-1) for g in grads])
        flat = self._collective(self._allreduce_flat, flat) / self.world_size
        self.bytes_communicated += flat.numel() * flat.element_size()
        out, offset = [], 0
        for g in grads:
            out.append(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
        return out

    def average_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Average `.grad` of `params` over ranks in place."""
        grads = [p.grad for p in params if p.grad is not None]
        for g, mean in zip(grads, self.reduce_grads(grads)):
            if mean is not g:
                g.copy_(mean)

    def broadcast_(self, tensors: Iterable[torch.Tensor], root: int = 0) -> None:
        """Make every rank start from rank 0's state (weights, alpha, beta, BN buffers)."""

    def mean(self, value: float) -> float:
        if self.world_size == 1:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64)
        return float(self._collective(self._allreduce_flat, t)[0]) / self.world_size

    def barrier(self) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def _allreduce_flat(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global batch; the batch must divide evenly (same computation as 1 process)."""
        if self.world_size == 1:
            return batch
        n = batch.shape[0]
        if n % self.world_size:
            raise ValueError(f"batch of {n} does not split evenly over {self.world_size} ranks: "
                             f"set data.batch_size to a multiple of the process count")
        per = n // self.world_size
        return batch[self.rank * per:(self.rank + 1) * per]


def create_engine(name: str, timeout_s: float = 60.0) -> Engine:
    """The engine named by the experiment's `distributed.engine`; ranks come from the launcher's environment."""
    if name == "none":
        return Engine()
    if name == "ddp":
        from nas_core.distributed._torch import TorchEngine

        return TorchEngine(placement(), timeout_s)
    if name == "horovod":
        from nas_core.distributed._horovod import HorovodEngine

        return HorovodEngine(timeout_s)
    raise ValueError(f"distributed.engine: unknown engine {name!r}; use none, ddp or horovod")


class _SumOverRanks(torch.autograd.Function):
    """Sum over ranks whose backward is again a sum over ranks (each rank's loss depends on every shard), with
    the engine's own flat all-reduce both ways. Autograd runs the backward outside the forward's watchdog guard,
    so it takes the guard itself: a peer stalled there is named, whatever the engine (Gloo would end the run with
    its bare recv timeout, Horovod would wait for ever)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, engine: "Engine") -> torch.Tensor:
        ctx.engine = engine
        return engine._allreduce_flat(tensor.clone())

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.engine._collective(ctx.engine._allreduce_flat, grad.clone()), None
