"""The `gridsvc` command, one module per command group:

serve · database (db, cluster) · imports (import) · cells (cells, outline) · demo · users ·
exports (export) · people · incidents (incidents, open311). What they share — the root command,
the one handler of domain errors, the session — is in :mod:`gridsvc.cli.common`.
"""

from __future__ import annotations

# Each module adds its commands to the root command when imported.
from gridsvc.cli import (  # noqa: F401
    cells,
    database,
    demo,
    exports,
    imports,
    incidents,
    people,
    serve,
    users,
)
from gridsvc.cli.common import app
from gridsvc.cli.serve import uvicorn_options

__all__ = ["app", "main", "uvicorn_options"]


def main() -> None:
    """Entry point of the `gridsvc` console script."""
    app()
