"""The search-space part of the experiment schema: op sets per cell type, cell topology, macro-architecture."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nas_core.space.partial_schema import BACKBONE_MACROS, check_partial, marked_roles

DARTS_OPS = [
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
]

# Cell types each macro-architecture is built of (a backbone macro: those of its marked blocks' roles).
MACRO_CELL_TYPES = {"unet": ("normal", "down", "up"), "darts-classifier": ("normal", "reduce"),
                    "resnext-unet": ("normal", "down", "up"), "plain-unet": ("normal", "down", "up")}


class CellSpaceConfig(BaseModel):
    """One cell type: its candidate ops and its DAG (DARTS topology unless edges are given)."""

    model_config = ConfigDict(extra="forbid")
    ops: list[str] = Field(default_factory=lambda: list(DARTS_OPS), description="Candidate operations on every edge.")
    nodes: int = Field(4, ge=1, le=12, description="Intermediate nodes of the cell.")
    edges: list[tuple[int, int]] | None = Field(
        None, description="Explicit edge list (from, to) over node indices (0, 1 = inputs); default: all edges to earlier nodes."
    )
    concat: list[int] | None = Field(
        None, description="Nodes concatenated into the cell output; default: all intermediate nodes (2 .. nodes+1)."
    )

    @model_validator(mode="after")
    def _check(self) -> "CellSpaceConfig":
        # Structure only (no torch): the graph rules live with the graph, in nas_core.space.cell.
        from nas_core.space.cell import check_cell_structure

        check_cell_structure(self)
        return self


class SpaceConfig(BaseModel):
    """What is searched and the network it is searched in."""

    model_config = ConfigDict(extra="forbid")
    macro: Literal["unet", "darts-classifier", "resnext-unet", "plain-unet"] = Field(
        "unet", description="Macro-architecture built of cells; resnext-unet and plain-unet: a hand-designed U-Net "
        "whose search_blocks are replaced by searched cells (partial search).")
    cells: dict[str, CellSpaceConfig] = Field(
        default_factory=lambda: {"normal": CellSpaceConfig(), "down": CellSpaceConfig(), "up": CellSpaceConfig()},
        description="Cell types and their spaces (unet: normal, down, up; darts-classifier: normal, reduce).",
    )
    op_params: dict[str, dict[str, float | int | str | bool]] = Field(
        default_factory=dict, description="Overrides of an op's default parameters, by op name."
    )
    user_ops: dict[str, str] = Field(
        default_factory=dict,
        description="Extra ops by name, as 'module:callable'; the module must be on the server's allow-list "
        "(NASFORGE_OP_MODULES), otherwise it is refused before anything is imported.",
    )
    depth: int = Field(2, ge=1, le=6, description="U-Net depth: number of down (and up) cells.")
    channels: int = Field(8, ge=2, le=512, description="Channels after the stem.")
    normal_cells_per_scale: int = Field(1, ge=0, le=8, description="Normal cells after each down/up cell.")
    layers: int = Field(8, ge=3, le=40, description="Cells in the DARTS classification stack.")
    in_channels: int = Field(3, ge=1, le=16, description="Input image channels.")
    num_classes: int = Field(2, ge=2, le=256, description="Output classes (background included).")
    auxiliary: bool = Field(False, description="darts-classifier: auxiliary head after the second reduction cell.")
    search_blocks: list[str] = Field(
        default_factory=list, description="Partial search (resnext-unet, plain-unet): the backbone's named blocks "
        "replaced by a searched cell of their role (normal, down, up), e.g. [decoder.1, bottleneck].")
    backbone: dict[str, int] = Field(
        default_factory=dict, description="Partial search: the backbone's further constructor arguments "
        "(resnext-unet: cardinality, bottleneck_width, blocks); channels, depth, in_channels, num_classes are the space's.")
    init_from: str | None = Field(
        None, description="Partial search: a checkpoint (state_dict) of the backbone whose weights the blocks not "
        "searched start from; inside the data roots or the runs folder.")
    freeze: bool = Field(False, description="Partial search: keep the blocks not searched as init_from has them "
                         "(no gradient, BatchNorm statistics fixed).")

    @model_validator(mode="before")
    @classmethod
    def _default_cells(cls, data):
        # A darts-classifier space without explicit cells gets DARTS's normal and reduction cells.
        if isinstance(data, dict) and data.get("macro") == "darts-classifier" and "cells" not in data:
            data = {**data, "cells": {"normal": {}, "reduce": {}}}
        # A partial search without explicit cells gets one default cell type per role of its marked blocks.
        if isinstance(data, dict) and data.get("macro") in BACKBONE_MACROS and "cells" not in data:
            data = {**data, "cells": {r: {} for r in marked_roles(data, cls.model_fields["depth"].default)}}
        return data

    @model_validator(mode="after")
    def _check(self) -> "SpaceConfig":
        for name, ref in self.user_ops.items():
            if ":" not in ref:
                raise ValueError(f"user_ops.{name}: {ref!r} is not 'module:callable'")
        check_partial(self)
        if self.macro in BACKBONE_MACROS:
            return self  # its cell types are those of its marked blocks, checked by check_partial
        need = MACRO_CELL_TYPES[self.macro]
        if self.macro == "unet" and self.normal_cells_per_scale == 0:
            need = ("down", "up")
        missing = [t for t in need if t not in self.cells]
        extra = [t for t in self.cells if t not in MACRO_CELL_TYPES[self.macro]]
        if missing:
            raise ValueError(f"cells: macro {self.macro!r} needs cell types {', '.join(need)}; add cells.{missing[0]}")
        if extra:
            raise ValueError(
                f"cells.{extra[0]}: macro {self.macro!r} has no {extra[0]!r} cells; "
                f"use {', '.join(MACRO_CELL_TYPES[self.macro])}"
            )
        return self
