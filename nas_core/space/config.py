"""The search-space part of the experiment schema: op sets per cell type, cell topology, macro-architecture."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DARTS_OPS = [
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
]


class CellSpaceConfig(BaseModel):
    """One cell type: its candidate ops and its DAG (DARTS topology unless edges are given)."""

    model_config = ConfigDict(extra="forbid")
    ops: list[str] = Field(default_factory=lambda: list(DARTS_OPS), description="Candidate operations on every edge.")
    nodes: int = Field(4, ge=1, le=12, description="Intermediate nodes of the cell.")
    edges: list[tuple[int, int]] | None = Field(
        None, description="Explicit edge list (from, to) over node indices (0, 1 = inputs); default: all edges to earlier nodes."
    )


class SpaceConfig(BaseModel):
    """What is searched and the network it is searched in."""

    model_config = ConfigDict(extra="forbid")
    macro: Literal["unet", "darts-classifier"] = Field("unet", description="Macro-architecture built of cells.")
    cells: dict[str, CellSpaceConfig] = Field(
        default_factory=lambda: {"normal": CellSpaceConfig(), "down": CellSpaceConfig(), "up": CellSpaceConfig()},
        description="Cell types and their spaces (unet: normal, down, up; darts-classifier: normal, reduce).",
    )
    op_params: dict[str, dict[str, float | int | str | bool]] = Field(
        default_factory=dict, description="Overrides of an op's default parameters, by op name."
    )
    depth: int = Field(2, ge=1, le=6, description="U-Net depth: number of down (and up) cells.")
    channels: int = Field(8, ge=2, le=512, description="Channels after the stem.")
    normal_cells_per_scale: int = Field(1, ge=0, le=8, description="Normal cells after each down/up cell.")
    layers: int = Field(8, ge=3, le=40, description="Cells in the DARTS classification stack.")
    in_channels: int = Field(3, ge=1, le=16, description="Input image channels.")
    num_classes: int = Field(2, ge=2, le=256, description="Output classes (background included).")
