"""Run Alembic migrations programmatically (the server applies them before it serves).

Alembic is imported only when a migration runs or is asked about: importing it costs about
0.15 s, which every CLI command paid to learn that the database was already up to date
(:func:`is_current` answers that with one query).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: ``revision = "0007"`` / ``down_revision: str | None = "0006"`` at the start of a line.
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.*?)\s*$", re.M)
_QUOTED = re.compile(r"""^(["'])([^"']+)\1$""")


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database down to `revision`."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    """The newest migration in the code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()


def current_revision(engine: Engine | str) -> str | None:
    """The revision the database is at (None: not migrated)."""
    from alembic.runtime.migration import MigrationContext

    eng = create_engine(engine) if isinstance(engine, str) else engine
    with eng.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def code_head() -> str | None:
    """The newest migration, read from the files' ``revision``/``down_revision`` lines without
    importing Alembic; None unless they form one plain chain (a merge, a branch or another
    spelling leaves the answer to Alembic: :func:`head_revision`)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        if path.name == "__init__.py":  # not a migration (Alembic skips it too)
            continue
        lines = _REVISION_LINE.findall(path.read_text(encoding="utf-8"))
        values = dict(lines)
        if len(lines) != 2 or len(values) != 2:
            return None
        revision = _QUOTED.match(values["revision"])
        down = values["down_revision"]
        parent = _QUOTED.match(down)
        if revision is None or (parent is None and down != "None"):
            return None
        revisions.add(revision[2])
        if parent is not None:
            parents.add(parent[2])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def is_current(engine: Engine) -> bool:
    """True when the database is at the code's one head (then there is nothing to migrate);
    False when it is behind, not migrated, or the head is not a plain one (ask Alembic)."""
    head = code_head()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            return list(versions) == [head]
    except ProgrammingError:  # no alembic_version table: never migrated
        return False
