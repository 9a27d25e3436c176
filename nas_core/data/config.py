"""The data part of the experiment schema: which prepared dataset or generator feeds the search, and its splits."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    normalize: bool = Field(True, description="Subtract the per-channel mean and divide by the std (from the manifest).")
    val_fraction: float = Field(0.15, ge=0, lt=1, description="Share of scenes held out for validation.")
    test_fraction: float = Field(0.15, ge=0, lt=1, description="Share of scenes held out for the final test.")
    arch_fraction: float = Field(0.5, gt=0, lt=1, description="Share of training scenes in the search's architecture half.")

    @model_validator(mode="after")
    def _check(self) -> "DataConfig":
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("data.val_fraction + data.test_fraction must leave at least 10% of scenes for training")
        return self
