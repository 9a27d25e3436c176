"""The data part of the experiment schema: which prepared dataset or generator feeds the search."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Literal["synthetic", "prepared"] = Field(
        "synthetic", description="synthetic: the built-in helicopter generator; prepared: a dataset made by `nasforge data prepare`."
    )
    path: str | None = Field(None, description="Prepared dataset directory (must lie under an allowed data root).")
    tile_size: int = Field(64, ge=16, le=2048, description="Tile side in pixels for the synthetic generator.")
    num_tiles: int = Field(64, ge=4, le=100000, description="Synthetic tiles to generate.")
    batch_size: int = Field(8, ge=1, le=1024)
    workers: int = Field(0, ge=0, le=64, description="Loader worker processes.")
    augment: bool = Field(True, description="Flips and 90-degree rotations during training.")
