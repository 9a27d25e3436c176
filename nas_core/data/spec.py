"""The preparation spec (`nasforge data prepare SPEC.yaml`): where scenes and labels are, how to tile them."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nas_core.data.readers import DataError


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["folder", "polygons", "synthetic"] = Field(
        ..., description="folder: images + masks of the same stem; polygons: scenes + CSV/GeoJSON labels; synthetic: the helicopter generator."
    )
    images: str | None = Field(None, description="Directory of scenes (folder, polygons).")
    masks: str | None = Field(None, description="folder: directory of masks, same stem as their image.")
    labels: str | None = Field(None, description="polygons: a .csv or .geojson file, or a directory of <scene stem>.geojson.")
    image_column: str = Field("image_id", description="CSV column / GeoJSON property naming the scene file.")
    geometry_column: str = Field("geometry", description="CSV column holding [(x, y), ...] or WKT.")
    label_column: str | None = Field("class", description="CSV column / GeoJSON property with the label value; null: one class.")
    classes: dict[str, int] | None = Field(
        None, description="polygons: label value -> class index (>= 1); default: each distinct value its own class, sorted."
    )
    mask_values: dict[int, int] | None = Field(None, description="folder: mask pixel value -> class; default: 0/255 and 0/1 binary, else indices.")
    outside: Literal["error", "clip"] = Field("error", description="polygons reaching off the scene: refuse, or clip them to it.")
    scenes: list[str] | None = Field(None, description="Only these scene file names.")
    limit: int | None = Field(None, ge=1, description="Only the first N scenes in name order (quick runs, tests).")
    n: int = Field(64, ge=1, description="synthetic: number of scenes.")
    size: int = Field(512, ge=16, description="synthetic: scene side in pixels.")

    @model_validator(mode="after")
    def _check(self) -> "SourceSpec":
        need = {"folder": ("images", "masks"), "polygons": ("images", "labels"), "synthetic": ()}[self.kind]
        for field in need:
            if not getattr(self, field):
                raise ValueError(f"source.{field} is required for source.kind: {self.kind}")
        if self.classes and min(self.classes.values()) < 1:
            raise ValueError("source.classes: class 0 is the background; give labelled classes indices from 1")
        return self


class PrepareSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: SourceSpec
    output: str = Field(..., description="Directory the prepared dataset is written to (made atomically).")
    tile_size: int = Field(512, ge=16, le=8192)
    overlap: int = Field(0, ge=0, description="Pixels shared by neighbouring tiles.")
    scale: float = Field(1.0, gt=0, le=4, description="Resize scenes by this factor before tiling (0.5 halves them).")
    max_empty_fraction: float = Field(1.0, ge=0, le=1, description="Most share of tiles with no object; extra empty tiles are dropped, seeded.")
    num_classes: int | None = Field(None, ge=2, le=256, description="Classes including background; default: from the labels.")
    seed: int = Field(0, ge=0)
    workers: int = Field(1, ge=1, le=64, description="Processes that cut scenes in parallel.")
    store: bool = Field(True, description="Also write the tiles to a memory-mapped array store (store/) that the loader reads without decoding.")

    @model_validator(mode="after")
    def _check(self) -> "PrepareSpec":
        if self.overlap >= self.tile_size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than tile_size ({self.tile_size})")
        return self

    def resolved(self, base: Path) -> "PrepareSpec":
        """Paths made absolute against `base` (the spec file's directory)."""
        src = self.source.model_copy(update={k: str((base / v).resolve()) for k in ("images", "masks", "labels")
                                             if (v := getattr(self.source, k))})
        return self.model_copy(update={"source": src, "output": str((base / self.output).resolve())})


def load_spec(path: str | Path) -> PrepareSpec:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such spec file") from None
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: a prepare spec is a mapping with `source:` and `output:`")
    try:
        spec = PrepareSpec.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: invalid prepare spec"]
        for err in exc.errors():
            lines.append(f"  {'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}")
        raise DataError("\n".join(lines)) from None
    return spec.resolved(path.resolve().parent)
