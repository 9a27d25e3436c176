"""The tiny data-parallel experiment the distributed tests share (32 px tiles, 4 channels, one search epoch)."""

OPS = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]


def experiment(engine: str, **search) -> dict:
    return {
        "name": f"dp-{engine}", "seed": 0,
        "space": {"channels": 4, "depth": 1, "cells": {t: {"ops": OPS, "nodes": 2} for t in ("normal", "down", "up")}},
        "data": {"tile_size": 32, "num_tiles": 16, "batch_size": 4, "augment": False},
        "search": {"epochs": 1, "pc_k": 2, "warmup_epochs": 0, **search},
        "retrain": {"enabled": False},
        "distributed": {"engine": engine, "sync_bn": True, "timeout_s": 60},
    }


# The one-process reference runs of this session by search settings (json.dumps(search, sort_keys=True)) -> the run
# directory of a finished one: a reference depends only on the search settings (engine "none", same seed, data and
# flags), so the one- and two-node equality tests and the mutant test compute each one once.
REFERENCES: dict = {}
