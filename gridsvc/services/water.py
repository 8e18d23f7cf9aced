"""Water areas (rivers, lakes, canals): imported once, read by proposed partitions.

Water bounds blocks like a road and no proposed cell reaches across it (geodata.partition).
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.partition import WATER_TAGS, water_mask
from geodata.readers import ReadResult
from gridsvc.errors import InvalidInput
from gridsvc.models import Community, Water
from gridsvc.repositories.bulk import ewkb_hex, upsert_rows
from gridsvc.services.imports import NAME_COLUMNS, ImportSummary


def import_water(
    session: Session, result: ReadResult, *, source: str, all_water: bool = False
) -> ImportSummary:
    """Insert or update the water polygons of a file, keyed by source + source id.

    Only the water features are kept (``natural=water``, ``waterway=riverbank`` …, see
    geodata.partition.water_mask). A file without those tags is refused unless ``all_water``
    says that every polygon in it is water (a layer drawn for the purpose).
    """
    gdf = result.gdf
    if not all_water and not any(c in gdf.columns for c in WATER_TAGS):
        raise InvalidInput(
            "the file has no water tags (natural, waterway, water, landuse); if every polygon "
            "in it is water, import it with --all-water"
        )
    summary = ImportSummary(
        kind="water",
        source=source,
        features_read=result.feature_count_read,
        repaired=list(result.notes),
        rejected=list(result.rejected),
    )
    polygonal = np.isin(gdf.geometry.geom_type.to_numpy(), ["Polygon", "MultiPolygon"])
    gdf = gdf[polygonal & (water_mask(gdf) | all_water)]
    if gdf.empty:
        raise InvalidInput(
            "the file has no water polygons (natural=water, waterway=riverbank, water=*, "
            "landuse=reservoir/basin, or a layer without these tags)"
        )
    name_column = next((c for c in NAME_COLUMNS if c in gdf.columns), None)
    names = (
        [None] * len(gdf)
        if name_column is None
        else [None if pd.isna(v) else str(v) for v in gdf[name_column]]
    )
    tag_columns = [c for c in WATER_TAGS if c in gdf.columns]
    tags = [
        json.dumps({c: str(v) for c, v in row.items() if pd.notna(v)}, ensure_ascii=False)
        for row in gdf[tag_columns].to_dict("records")
    ]
    summary.inserted, summary.updated = upsert_rows(
        session,
        "water",
        ("source", "source_id", "name", "geom", "properties"),
        zip(
            [source] * len(gdf),
            [str(v) for v in gdf["source_id"]],
            names,
            ewkb_hex(gdf.geometry.values),
            tags,
            strict=True,
        ),
    )
    return summary


def community_water(session: Session, community_id: int) -> gpd.GeoSeries:
    """The water polygons meeting the community (found through the GiST index)."""
    rows = session.scalars(
        select(Water.geom)
        .join(Community, func.ST_Intersects(Community.geom, Water.geom))
        .where(Community.id == community_id)
        .order_by(Water.id)  # the same proposal for the same data (see proposals._roads)
    ).all()
    return gpd.GeoSeries([to_shape(g) for g in rows], crs=4326)
