"""Hand-designed segmentation networks used as references for searched ones, and as the macro of a partial search.

Public names are loaded on first use: the experiment schema reads the block lists (`nas_core.models.blocks`)
without importing torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "BlockSpec": "blocks", "BACKBONES": "blocks",
    "PlainUNet": "plain_unet", "ResNeXtBlock": "resnext_unet", "ResNeXtUNet": "resnext_unet",
    "load_weights": "weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"nas_core.models.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nas_core.models' has no attribute {name!r}")
