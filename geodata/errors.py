"""The one error type of the geodata package."""

from __future__ import annotations

import pyogrio.errors

__all__ = ["GeodataError", "InputTooLarge"]


class GeodataError(ValueError):
    """A user's file or input is unusable; the message says which file, which row and why."""


#: Errors pyogrio/GDAL raise for unreadable or unwritable data (translated into GeodataError).
GDAL_ERRORS: tuple[type[Exception], ...] = (
    pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError,
    pyogrio.errors.FieldError,
    pyogrio.errors.FeatureError,
    pyogrio.errors.GeometryError,
    pyogrio.errors.CRSError,
)


class InputTooLarge(GeodataError):
    """A user's file exceeds a size limit (a zip member, the unzipped total, a workbook part)."""
