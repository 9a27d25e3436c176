"""Data: the synthetic helicopter generator, dataset preparation (tiling, polygons, manifest), splits and loaders.

Names load lazily: `nas_core.config` imports `nas_core.data.config`, and the web backend should not pay for torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "DataConfig": "nas_core.data.config",
    "HelicopterTiles": "nas_core.data.synthetic",
    "make_helicopter_tiles": "nas_core.data.synthetic",
    "build_datasets": "nas_core.data.datasets",
    "PreparedTiles": "nas_core.data.datasets",
    "make_loader": "nas_core.data.loader",
    "ShardSampler": "nas_core.data.loader",
    "split_by_scene": "nas_core.data.splits",
    "prepare_dataset": "nas_core.data.prepare",
    "PrepareSpec": "nas_core.data.spec",
    "load_spec": "nas_core.data.spec",
    "load_manifest": "nas_core.data.manifest",
    "DataError": "nas_core.data.readers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        # `prepare_dataset` is `nas_core.data.prepare.prepare` (the package attribute `prepare` is the module).
        return getattr(importlib.import_module(_EXPORTS[name]), "prepare" if name == "prepare_dataset" else name)
    raise AttributeError(f"module 'nas_core.data' has no attribute {name!r}")
