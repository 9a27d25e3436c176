"""Polygon labels in pixel coordinates (CSV like the Airbus sample, or GeoJSON) and their rasterisation.

Convention: a vertex (x, y) names pixel column x, row y, and a polygon covers every pixel on or inside its
outline. So the box [(x0, y0), (x1, y0), (x1, y1), (x0, y1)] covers columns x0..x1 and rows y0..y1 inclusive,
(x1 - x0 + 1) * (y1 - y0 + 1) pixels: PIL's ImageDraw.polygon with the same fill and outline does exactly that.
"""
from __future__ import annotations

import ast
import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nas_core.data.readers import DataError

_NUMBER_PAIR = re.compile(r"(-?\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?)")


@dataclass
class Label:
    scene: str                       # file name of the scene the polygon lies on
    rings: list[list[tuple[float, float]]]  # outer rings (MultiPolygon gives several); holes are not drawn
    value: str                       # the label value (class name)
    where: str                       # "file row N" or "file feature N", for error messages


def _parse_geometry(text: str, where: str) -> list[list[tuple[float, float]]]:
    text = text.strip()
    try:
        if text.upper().startswith(("POLYGON", "MULTIPOLYGON")):  # WKT: take each ring's number pairs
            rings = [[(float(a), float(b)) for a, b in _NUMBER_PAIR.findall(part)]
                     for part in re.split(r"\)\s*,\s*\(", text)]
        else:
            pts = ast.literal_eval(text)
            rings = [[(float(x), float(y)) for x, y in pts]]
    except (ValueError, SyntaxError, TypeError) as exc:
        raise DataError(f"{where}: geometry is not a list of (x, y) points or a WKT polygon ({exc})") from None
    rings = [r for r in rings if r]
    if not rings or any(len(r) < 3 for r in rings):
        raise DataError(f"{where}: a polygon needs at least 3 points")
    return rings


def read_csv_labels(path: Path, image_column: str, geometry_column: str, label_column: str | None) -> list[Label]:
    try:
        fh = open(path, newline="")
    except OSError as exc:
        raise DataError(f"{path}: cannot open the labels file ({exc.strerror})") from None
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in (image_column, geometry_column, label_column) if c and c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: no column(s) {missing}; columns are {reader.fieldnames}; set source.*_column")
        out = []
        for n, row in enumerate(reader, start=2):  # row 1 is the header
            where = f"{path} row {n}"
            out.append(Label(row[image_column], _parse_geometry(row[geometry_column], where),
                             row[label_column] if label_column else "object", where))
    return out


def read_geojson_labels(path: Path, image_property: str, label_property: str | None,
                        default_scene: str | None = None) -> list[Label]:
    """A FeatureCollection of Polygon / MultiPolygon features in pixel coordinates.

    The scene comes from the feature's `image_property`, or, for one file per scene, from `default_scene`.
    """
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable GeoJSON file ({exc})") from None
    feats = doc.get("features") if isinstance(doc, dict) else None
    if feats is None:
        raise DataError(f"{path}: expected a GeoJSON FeatureCollection with `features`")
    out = []
    for n, f in enumerate(feats):
        where = f"{path} feature {n}"
        geom, props = f.get("geometry") or {}, f.get("properties") or {}
        kind, coords = geom.get("type"), geom.get("coordinates")
        if kind == "Polygon":
            polys = [coords]
        elif kind == "MultiPolygon":
            polys = coords
        else:
            raise DataError(f"{where}: geometry type {kind!r}; only Polygon and MultiPolygon are rasterised")
        rings = [[(float(p[0]), float(p[1])) for p in poly[0]] for poly in polys if poly]
        if not rings or any(len(r) < 3 for r in rings):
            raise DataError(f"{where}: a polygon needs at least 3 points")
        scene = props.get(image_property, default_scene)
        if scene is None:
            raise DataError(f"{where}: no property {image_property!r} naming its scene; add it or use one file per scene")
        out.append(Label(str(scene), rings, str(props.get(label_property, "object")) if label_property else "object", where))
    return out


def rasterise(labels: list[Label], width: int, height: int, classes: dict[str, int], outside: str,
              scene_path: Path) -> tuple[np.ndarray, int, int]:
    """Class-index mask (H, W) uint8 of a scene's polygons, in file order (a later polygon wins an overlap).

    outside="error" refuses a vertex off the image; "clip" clamps vertices onto it and drops polygons that lie
    wholly outside. Returns (mask, polygons drawn, polygons dropped).
    """
    im = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(im)
    drawn = dropped = 0
    for lab in labels:
        if lab.value not in classes:
            raise DataError(f"{lab.where}: unknown label value {lab.value!r}; source.classes knows "
                            f"{sorted(classes)}; add it there")
        cls = classes[lab.value]
        for ring in lab.rings:
            pts = np.asarray(ring, dtype=np.float64)
            off = (pts[:, 0] < 0) | (pts[:, 0] > width - 1) | (pts[:, 1] < 0) | (pts[:, 1] > height - 1)
            if off.any():
                if outside == "error":
                    x, y = pts[np.argmax(off)]
                    raise DataError(f"{lab.where}: polygon reaches ({x:g}, {y:g}), outside the {width}x{height} scene "
                                    f"{scene_path.name}; fix the label or set source.outside: clip")
                if (pts[:, 0].max() < 0 or pts[:, 0].min() > width - 1 or pts[:, 1].max() < 0
                        or pts[:, 1].min() > height - 1):
                    dropped += 1
                    continue
                pts[:, 0] = pts[:, 0].clip(0, width - 1)
                pts[:, 1] = pts[:, 1].clip(0, height - 1)
            draw.polygon([tuple(p) for p in pts], fill=cls, outline=cls)
            drawn += 1
    return np.asarray(im), drawn, dropped
