"""`nasforge` with one deliberate data-parallel bug, so a test can show that the equality comparison fails when the
ranks do not compute the mean gradient: rank RANK's contribution to every gradient all-reduce is scaled by FACTOR.

    python _mutant.py RANK FACTOR search config.yaml ...   (under torchrun / horovodrun, like `nasforge`)
"""
from __future__ import annotations

import sys

from nas_core.distributed.engine import Engine


def scale_one_rank(rank: int, factor: float) -> None:
    """Patch every engine's gradient mean so that `rank` sends `factor` times its own gradients."""
    mean = Engine.reduce_grads

    def reduce_grads(self, grads):
        if self.world_size > 1 and self.rank == rank:
            grads = [g * factor for g in grads]
        return mean(self, grads)

    Engine.reduce_grads = reduce_grads


if __name__ == "__main__":
    scale_one_rank(int(sys.argv[1]), float(sys.argv[2]))
    from nas_core.cli import app

    sys.argv = ["nasforge", *sys.argv[3:]]
    app()
