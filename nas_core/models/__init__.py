"""Hand-designed segmentation networks used as references for searched ones."""
from nas_core.models.plain_unet import PlainUNet
from nas_core.models.resnext_unet import BlockSpec, ResNeXtBlock, ResNeXtUNet
from nas_core.models.weights import load_weights

__all__ = ["BlockSpec", "PlainUNet", "ResNeXtBlock", "ResNeXtUNet", "load_weights"]
