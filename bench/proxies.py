"""Zero-cost proxy scoring throughput on the default U-Net space: candidates per second, each built from a
random genotype and scored by all five proxies on one batch (the experiment's default tile and batch sizes), and
what the FLOPs size baseline costs beside them, counted on one tile as each trial records it."""
from __future__ import annotations

import random
import time

import torch

from nas_core.discrete import CellSearchSpace
from nas_core.proxies import NAMES, PROXIES
from nas_core.space import Genotype, build_network, count_flops
from nas_core.space.config import SpaceConfig


def run(quick: bool = False, candidates: int | str = 20, batch: int | str = 8, tile: int | str = 64,
        threads: int | str = 1) -> dict:
    candidates, batch, tile, threads = int(candidates), int(batch), int(tile), int(threads)
    # One intra-op thread by default: on this shared 2-core machine two threads ran 30x slower, not faster.
    torch.set_num_threads(threads)
    if quick:
        candidates, tile = 2, 32
    cfg = SpaceConfig()
    space, rng = CellSearchSpace(cfg), random.Random(0)
    torch.manual_seed(0)
    x = torch.randn(batch, cfg.in_channels, tile, tile)
    y = torch.randint(0, cfg.num_classes, (batch, tile, tile))
    per_proxy = {n: 0.0 for n in NAMES}
    build_s = flops_s = 0.0
    t_all = time.perf_counter()
    for _ in range(candidates):
        t0 = time.perf_counter()
        net = build_network(Genotype.from_dict(space.sample(rng)), cfg, auxiliary=False)
        build_s += time.perf_counter() - t0
        for name in NAMES:
            t0 = time.perf_counter()
            PROXIES[name](net, x, y)
            per_proxy[name] += time.perf_counter() - t0
        t0 = time.perf_counter()
        count_flops(net, x[:1])
        flops_s += time.perf_counter() - t0
    total = time.perf_counter() - t_all
    rate = candidates / total
    return {
        "candidates": candidates, "batch": batch, "tile": tile, "threads": torch.get_num_threads(),
        "candidates_per_s": rate, "build_s_per_candidate": build_s / candidates,
        "proxy_s_per_candidate": {n: t / candidates for n, t in per_proxy.items()},
        "flops_s_per_candidate": flops_s / candidates,
        "figure": (f"{rate:.2f} candidates/s (all 5 proxies, default U-Net space, batch {batch}x{tile}px, CPU, {threads} thread); "
                   f"slowest {max(per_proxy, key=per_proxy.get)} {max(per_proxy.values()) / candidates * 1000:.0f} ms; "
                   f"FLOPs count on one tile {flops_s / candidates * 1000:.0f} ms "
                   f"({flops_s / max(sum(per_proxy.values()), 1e-9) * 100:.0f}% of the 5 proxies)"),
    }
