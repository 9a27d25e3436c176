"""A hand-designed network as data (no torch): the `baseline.networks` entries of an experiment and the
`run.network` of the baseline run that trains one. `build` (torch) makes the module; a partial search's backbone
and the sensitivity tool build theirs through it too, so a macro name maps to its class in one place."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nas_core.models.blocks import BACKBONES

NETWORK_NAMES = tuple(BACKBONES)


class NetworkConfig(BaseModel):
    """One hand-designed U-Net of nas_core.models, trained and evaluated by the retrain and evaluate stages beside
    a search (like the random baseline), with the experiment's data, retrain budget and seed."""

    model_config = ConfigDict(extra="forbid")
    name: Literal[NETWORK_NAMES] = Field(..., description="resnext-unet: ResNeXt blocks (grouped 3x3 convolutions, "
                                         "residual shortcuts); plain-unet: Ronneberger's two-conv stages.")
    channels: int = Field(16, ge=1, le=1024, description="Channels at the first level; doubled at each level down.")
    depth: int = Field(3, ge=1, le=8, description="Down-sampling levels.")
    backbone: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict, description="The class's further arguments: resnext-unet "
                                     "takes cardinality, bottleneck_width, blocks; plain-unet none.")

    @model_validator(mode="after")
    def _check_args(self) -> "NetworkConfig":
        allowed = BACKBONES[self.name].args
        for arg in self.backbone:
            if arg not in allowed:
                raise ValueError(f"backbone.{arg}: {self.name} takes no argument {arg!r}; it takes "
                                 f"{', '.join(allowed) or 'none (channels and depth are fields of their own)'}")
        return self

    @property
    def label(self) -> str:
        """How tables and plots name it, e.g. `resnext-unet c16 d3`."""
        extra = "".join(f" {k}{v}" for k, v in sorted(self.backbone.items()))
        return f"{self.name} c{self.channels} d{self.depth}{extra}"


def build(name: str, in_channels: int, num_classes: int, channels: int, depth: int, args: dict[str, int]):
    """The nn.Module of the hand-designed network `name` (a BACKBONES key). ValueError/TypeError from the class
    name the bad argument."""
    import nas_core.models

    model_class = getattr(nas_core.models, BACKBONES[name].model)
    return model_class(in_channels, num_classes, channels, depth, **args)


def build_network(net: NetworkConfig, in_channels: int, num_classes: int):
    return build(net.name, in_channels, num_classes, net.channels, net.depth, net.backbone)
