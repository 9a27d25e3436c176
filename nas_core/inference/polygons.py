"""Objects of a predicted class mask as polygons with scores, in the scene's map coordinates (pixel coordinates
for a plain image): GDAL polygonises the mask from its file, so a scene larger than memory never has to be read
whole."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import geometry_mask, shapes
from rasterio.windows import Window
from shapely.geometry import mapping, shape

from nas_core.rundir import write_atomic


def mask_polygons(mask_path: Path, prob_path: Path, classes: list[str]) -> list[dict]:
    """GeoJSON features of every connected object (8-connectivity, as the object metrics count) of each
    foreground class in the mask file: properties class, class_name, score (the mean probability of its class
    over its pixels, as nas_core.metrics.objects scores an object) and area_px."""
    features = []
    with rasterio.open(mask_path) as mask_ds, rasterio.open(prob_path) as prob_ds:
        band = rasterio.band(mask_ds, 1)
        # The mask as its own mask: background pixels make no polygon.
        for geom, value in shapes(band, mask=band, connectivity=8, transform=mask_ds.transform):
            c = int(value)
            poly = shape(geom)
            score, area = _score(prob_ds, poly, c)
            features.append({"type": "Feature", "geometry": mapping(poly),
                             "properties": {"class": c, "class_name": classes[c] if c < len(classes) else str(c),
                                            "score": score, "area_px": area}})
    features.sort(key=lambda f: -f["properties"]["score"])
    return features


def _score(prob_ds, poly, c: int) -> tuple[float, int]:
    """Mean probability of class `c` inside the polygon, read through the window around it only."""
    # The polygon's bounds back in pixels through the inverse transform: any orientation (a plain image's
    # identity transform has rows growing downwards, a north-up GeoTIFF's the other way).
    x0, y0, x1, y1 = poly.bounds
    inverse = ~prob_ds.transform
    cols, rows = zip(*(inverse @ (x, y) for x in (x0, x1) for y in (y0, y1)))
    c0, r0 = max(int(np.floor(min(cols))), 0), max(int(np.floor(min(rows))), 0)
    c1, r1 = min(int(np.ceil(max(cols))), prob_ds.width), min(int(np.ceil(max(rows))), prob_ds.height)
    win = Window(c0, r0, c1 - c0, r1 - r0)
    probs = prob_ds.read(c + 1, window=win)
    inside = geometry_mask([mapping(poly)], out_shape=probs.shape, transform=prob_ds.window_transform(win),
                           invert=True, all_touched=False)
    n = int(inside.sum())
    return (float(probs[inside].mean()) if n else 0.0), n


def write_geojson(path: Path, features: list[dict], crs) -> None:
    """A FeatureCollection; a projected CRS is named in the (pre-RFC 7946) `crs` member so GIS tools place it."""
    collection: dict = {"type": "FeatureCollection", "features": features}
    if crs is not None:
        epsg = crs.to_epsg()
        collection["crs"] = {"type": "name", "properties": {"name": f"EPSG:{epsg}" if epsg else crs.to_wkt()}}
    write_atomic(path, json.dumps(collection, allow_nan=False))

