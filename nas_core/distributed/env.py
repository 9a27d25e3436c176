"""Where this process sits in a data-parallel job: rank, world size and local rank, from whichever launcher
started it (torchrun, mpirun/horovodrun, srun), and the device its local rank owns."""
from __future__ import annotations

import os
from dataclasses import dataclass

# (rank, world size, local rank) variables, most specific launcher first.
_LAUNCHERS = (
    ("RANK", "WORLD_SIZE", "LOCAL_RANK"),  # torchrun
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),  # mpirun / horovodrun --mpi
    ("HOROVOD_RANK", "HOROVOD_SIZE", "HOROVOD_LOCAL_RANK"),  # horovodrun --gloo
    ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),  # srun
    ("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),  # MPICH / Intel MPI
)


@dataclass(frozen=True)
class Placement:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def placement(environ: dict[str, str] | None = None) -> Placement:
    env = os.environ if environ is None else environ
    for rank, size, local in _LAUNCHERS:
        if rank in env and size in env:
            return Placement(int(env[rank]), int(env[size]), int(env.get(local, 0)))
    return Placement()


def device_for(place: Placement):
    """The GPU of this local rank when there are GPUs, else the CPU."""
    import torch

    if torch.cuda.is_available():
        index = place.local_rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")
