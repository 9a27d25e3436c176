"""Data loaders whose sampler shards an epoch across data-parallel ranks (like DistributedSampler), seeded."""
from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def _world(distributed: bool, rank: int | None, world_size: int | None) -> tuple[int, int]:
    if not distributed:
        return 0, 1
    if rank is None or world_size is None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("make_loader(distributed=True) needs torch.distributed initialised, or explicit rank and world_size")
        rank = dist.get_rank() if rank is None else rank
        world_size = dist.get_world_size() if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    return rank, world_size


class ShardSampler(Sampler[int]):
    """Every rank sees a disjoint, equal-length share of one seeded permutation per epoch.

    The epoch's order is padded by repeating its head so the length divides the world size: ranks then step
    in lockstep, which all-reduce needs. `set_epoch` reshuffles and tells the dataset (for its augmentation).
    """

    def __init__(self, dataset: Dataset, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1):
        self.dataset, self.shuffle, self.seed = dataset, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.num_samples = math.ceil(len(dataset) / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        total = self.num_samples * self.world_size
        if n:
            order += (order * math.ceil(total / n))[: total - n]
        return iter(order[self.rank:total:self.world_size])

    def __len__(self) -> int:
        return self.num_samples


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int, distributed: bool = False,
                workers: int = 0, rank: int | None = None, world_size: int | None = None,
                drop_last: bool = False, device: str | torch.device | None = None,
                persistent: bool | None = None) -> DataLoader:
    """A DataLoader over `dataset` with a ShardSampler; call `loader.sampler.set_epoch(e)` each epoch.

    For a CUDA `device` the batches come in pinned memory (so `.to(device, non_blocking=True)` overlaps the copy)
    and the workers persist across epochs (`persistent`, default: on CUDA only); on CPU nothing changes.
    """
    if len(dataset) == 0:
        raise ValueError("make_loader: the dataset is empty; check the split fractions and the prepared dataset")
    r, w = _world(distributed, rank, world_size)
    sampler = ShardSampler(dataset, shuffle, seed, r, w)
    cuda = device is not None and torch.device(device).type == "cuda"
    persistent = (cuda if persistent is None else persistent) and workers > 0
    # Workers start from a fresh interpreter (forkserver), never as forks of the caller: a fork inherits what the
    # caller holds (a Celery/Redis connection, torch's thread pool) and can hang on it. Persistent workers keep
    # the dataset they were given; the augmentation still follows the epoch because the datasets keep their epoch
    # in shared memory (nas_core.data.datasets._View).
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=drop_last,
                      persistent_workers=persistent, pin_memory=cuda, generator=torch.Generator().manual_seed(seed),
                      multiprocessing_context="forkserver" if workers > 0 else None)
