"""The errors pyogrio/GDAL raise for unreadable or unwritable data (kept apart from
``geodata.errors`` so that naming GeodataError does not import pyogrio and geopandas)."""

from __future__ import annotations

import pyogrio.errors

__all__ = ["GDAL_ERRORS"]

#: Errors pyogrio/GDAL raise for unreadable or unwritable data (translated into GeodataError).
GDAL_ERRORS: tuple[type[Exception], ...] = (
    pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError,
    pyogrio.errors.FieldError,
    pyogrio.errors.FeatureError,
    pyogrio.errors.GeometryError,
    pyogrio.errors.CRSError,
)
