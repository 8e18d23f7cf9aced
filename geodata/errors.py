"""The one error type of the geodata package."""

from __future__ import annotations

__all__ = ["GeodataError", "InputTooLarge"]


class GeodataError(ValueError):
    """A user's file or input is unusable; the message says which file, which row and why."""


class InputTooLarge(GeodataError):
    """A user's file exceeds a size limit (a zip member, the unzipped total, a workbook part)."""
