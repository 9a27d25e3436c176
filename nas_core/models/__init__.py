"""Hand-designed segmentation networks used as references for searched ones, and as the macro of a partial search.

Public names are loaded on first use: the experiment schema reads the block lists (`nas_core.models.blocks`)
without importing torch.
"""
from __future__ import annotations

from nas_core._lazy import lazy_exports

_EXPORTS = {
    "BlockSpec": "blocks", "BACKBONES": "blocks",
    "PlainUNet": "plain_unet", "ResNeXtBlock": "resnext_unet", "ResNeXtUNet": "resnext_unet",
    "load_weights": "weights",
    "NetworkConfig": "hand_designed", "build_network": "hand_designed",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
