"""GeoJSON objects (already parsed from JSON) to GeoDataFrames, with clear errors."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geodata.errors import GeodataError
from geodata.limits import InputLimits, check_coordinates


def features_to_gdf(
    obj: dict[str, Any],
    *,
    max_features: int | None = None,
    limits: InputLimits | None = None,
) -> gpd.GeoDataFrame:
    """A FeatureCollection (or one Feature) as a GeoDataFrame in EPSG:4326.

    Raises GeodataError for a wrong `type`, a geometry shapely cannot read (naming the feature),
    too many features, more coordinates than `limits` allow (per geometry and in all, the rule
    of :func:`geodata.limits.check_coordinates`), or coordinates that are not lon/lat.
    """
    kind = obj.get("type")
    if kind == "Feature":
        features: list[Any] = [obj]
    elif kind == "FeatureCollection":
        listed = obj.get("features")
        if not isinstance(listed, list):
            raise GeodataError("a FeatureCollection needs a 'features' list")
        features = listed
    else:
        raise GeodataError(f"expected a GeoJSON Feature or FeatureCollection, got type {kind!r}")
    if max_features is not None and len(features) > max_features:
        raise GeodataError(f"{len(features)} features sent; the limit is {max_features}")
    geoms, props = [], []
    for i, feat in enumerate(features):
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            raise GeodataError(f"feature {i}: not a GeoJSON Feature")
        try:
            geoms.append(shapely.geometry.shape(feat["geometry"]) if feat.get("geometry") else None)
        except Exception as exc:  # shapely raises several types for malformed coordinates
            raise GeodataError(f"feature {i}: unreadable geometry ({exc})") from exc
        properties = feat.get("properties") or {}
        if not isinstance(properties, dict):
            raise GeodataError(f"feature {i}: 'properties' must be an object")
        props.append({"source_id": str(feat.get("id", i)), **properties})
    if limits is not None:
        check_coordinates(geoms, lambda i: f"feature {i}", limits)
    gdf = gpd.GeoDataFrame(props, geometry=geoms, crs="EPSG:4326")
    if len(gdf):
        bounds = shapely.bounds(np.asarray([g for g in geoms if g is not None], dtype=object))
        if len(bounds) and (
            np.nanmax(np.abs(bounds[:, [0, 2]])) > 180 or np.nanmax(np.abs(bounds[:, [1, 3]])) > 90
        ):
            raise GeodataError(
                "coordinates are not longitude/latitude (EPSG:4326); GeoJSON must be WGS84 "
                "(RFC 7946): reproject the data before sending it"
            )
    return gdf
