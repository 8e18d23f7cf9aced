"""What every `gridsvc` command shares: the root command, the consoles, the one handler of
domain errors, the database session and who a command acts as.

Only light modules at the top of every module of this package: `gridsvc --help` and the small
commands must start fast, so sqlalchemy, geopandas, shapely, pandas, pyproj, folium, matplotlib,
fastapi and uvicorn are imported inside the commands that use them
(tests/gridsvc/test_cli_startup.py checks it).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from geodata.errors import GeodataError
from gridsvc.errors import GridsvcError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print the error for the operator and end the command with ``code``."""
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


class _Commands(TyperGroup):
    """The root command group: a domain error raised by any command ends it here, once, with
    its message and exit code 1 (the database work of the command is not committed)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GridsvcError as exc:
            fail(exc.detail)
        except GeodataError as exc:
            fail(str(exc))


app = typer.Typer(
    cls=_Commands,
    help="gridsvc — 网格化管理 service: cells, buildings, households, incidents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _setup_logging() -> None:
    from gridsvc.settings import get_settings

    logging.basicConfig(
        level=get_settings().app.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


@app.callback()
def _main() -> None:
    """Configure logging before any command (the CLI is an edge of the program)."""
    _setup_logging()


@contextlib.contextmanager
def open_session() -> Iterator[Session]:
    """The database ready (embedded cluster started, migrated) and a session on it."""
    from sqlalchemy.orm import Session

    from gridsvc.bootstrap import prepare_database
    from gridsvc.db.engine import get_engine

    prepare_database()
    with Session(get_engine()) as session:
        from gridsvc.services import audit

        audit.set_actor(session, f"cli:{getpass.getuser()}")
        yield session


def acting_as(session: Session, username: str | None = None):  # type: ignore[no-untyped-def]
    """Who a command acts as: a named user (their scope and masking apply, and the audit log
    names them), or the operator with admin rights (the command line runs on the server)."""
    from sqlalchemy import select

    from gridsvc.auth.principal import Principal
    from gridsvc.models import User
    from gridsvc.services.principals import principal_for

    if username is None:
        return Principal(id=0, username="cli", role="admin")
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        fail(f"no active user {username!r}")
    from gridsvc.services import audit

    audit.set_actor(session, f"cli:{getpass.getuser()} as {username}")
    return principal_for(session, user)
