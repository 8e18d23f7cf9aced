"""Domain errors, raised below the API layer, and the one table that maps them to HTTP.

Services raise these; ``gridsvc.api.problems`` turns them into RFC 9457 problem+json bodies
using :data:`HTTP_STATUS`. Nothing here imports FastAPI.
"""

from __future__ import annotations

from typing import Any


class GridsvcError(Exception):
    """Base of every error gridsvc raises on purpose; ``detail`` is shown to the user."""

    title = "Error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(GridsvcError):
    """The request or file is malformed or breaks a rule (bad geometry, wrong CRS, bad value)."""

    title = "Invalid input"


class BadQueryParameter(InvalidInput):
    """A query parameter is unknown or malformed (OGC API answers these with 400, not 422)."""

    title = "Bad query parameter"


class NotFound(GridsvcError):
    """A named object (community, cell, building …) does not exist."""

    title = "Not found"


class NotAuthenticated(GridsvcError):
    """No valid credentials were given."""

    title = "Not authenticated"


class Forbidden(GridsvcError):
    """The user is signed in but the role or scope does not allow this."""

    title = "Forbidden"


class Conflict(GridsvcError):
    """The data changed since it was read, or the change breaks a uniqueness rule."""

    title = "Conflict"


class PreconditionRequired(GridsvcError):
    """A change must name the version it was based on (If-Match) and did not."""

    title = "Precondition required"


class TooLarge(GridsvcError):
    """An upload or payload exceeds a configured limit."""

    title = "Payload too large"


class TooManyRequests(GridsvcError):
    """Rate limit reached."""

    title = "Too many requests"


class EmbeddedDatabaseError(GridsvcError):
    """The embedded PostGIS cluster cannot be set up or started."""

    title = "Embedded database error"


#: The single mapping from domain error to HTTP status code.
HTTP_STATUS: dict[type[GridsvcError], int] = {
    InvalidInput: 422,
    BadQueryParameter: 400,
    NotFound: 404,
    NotAuthenticated: 401,
    Forbidden: 403,
    Conflict: 409,
    PreconditionRequired: 428,
    TooLarge: 413,
    TooManyRequests: 429,
    EmbeddedDatabaseError: 503,
}


def http_status(error: GridsvcError) -> int:
    """HTTP status for a domain error (walks the class hierarchy; 500 if unmapped)."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
