"""Start-up steps shared by `gridsvc serve`, the CLI and the tests.

Database ready (embedded cluster started if no URL is configured) → migrations applied →
demo street loaded into an empty development database → an admin account exists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsvc.db import migrate
from gridsvc.db.engine import get_engine
from gridsvc.models import Cell, Community, Street, User
from gridsvc.services.users import ScopeSpec, create_user
from gridsvc.settings import get_settings

log = logging.getLogger(__name__)


@dataclass
class Readiness:
    """What start-up did: whether it started the embedded cluster, and sign-in details."""

    started_embedded: bool = False
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (user, password, role)


def prepare_database() -> bool:
    """Make the database reachable and migrated; True if this call started the embedded cluster."""
    settings = get_settings()
    started = False
    if not settings.db.database_url:
        from gridsvc.localdb import embedded_cluster

        started = embedded_cluster().start()
    engine = get_engine()
    if not migrate.is_current(engine):
        migrate.upgrade(engine.url.render_as_string(hide_password=False))
    return started


def ensure_admin(session: Session) -> tuple[str, str] | None:
    """Create the first admin if there is none; returns (user, password) when it is known."""
    settings = get_settings()
    has_admin = session.scalar(select(func.count()).where(User.role == "admin"))
    if not settings.app.is_development and not settings.auth.admin_password:
        if not has_admin:
            log.warning("no admin user: create one with `gridsvc users create NAME --role admin`")
        return None
    password = settings.remembered_secret("admin_password", settings.auth.admin_password)
    if not has_admin:
        create_user(
            session, username="admin", password=password, role="admin", full_name="系统管理员"
        )
        session.commit()
    elif (
        not (settings.app.var_dir / "admin_password").exists() and not settings.auth.admin_password
    ):
        return None
    return ("admin", password)


def ensure_demo(session: Session, say=print) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """Load the demo street into an empty database and create demo users; returns logins."""
    settings = get_settings()
    if not settings.app.is_development or not settings.app.load_demo:
        return []
    if not session.scalar(select(func.count()).select_from(Street)):
        from geodata.synth import SynthConfig, generate_street
        from gridsvc.services.demo import load_street

        say(f"generating the demo street (seed {settings.app.demo_seed}) …")
        street = generate_street(SynthConfig(seed=settings.app.demo_seed))
        loaded = load_street(session, street, step=lambda s: say(f"  loading {s} …"))
        session.commit()
        say(
            f"demo street {loaded.street_code}: {loaded.communities} communities, {loaded.cells} "
            f"cells, {loaded.buildings} buildings, {loaded.households} households, "
            f"{loaded.incidents} incidents"
        )
    return _ensure_demo_users(session)


def _ensure_demo_users(session: Session) -> list[tuple[str, str, str]]:
    password = get_settings().remembered_secret("demo_password")
    street_code = session.scalar(select(Street.code).order_by(Street.id).limit(1))
    community_code = session.scalar(select(Community.code).order_by(Community.code).limit(1))
    cell_code = session.scalar(
        select(Cell.code).where(Cell.kind == "general").order_by(Cell.code).limit(1)
    )
    wanted = [
        ("jiedao", "street_staff", ScopeSpec("street", street_code)),
        ("shequ", "community_staff", ScopeSpec("community", community_code)),
        ("gezhang", "leader", ScopeSpec("cell", cell_code)),
    ]
    logins = []
    for username, role, scope in wanted:
        if scope.code is None:
            continue
        if not session.scalar(select(func.count()).where(User.username == username)):
            create_user(session, username=username, password=password, role=role, scope=scope)
        logins.append((username, password, f"{role} of {scope.kind} {scope.code}"))
    session.commit()
    return logins
