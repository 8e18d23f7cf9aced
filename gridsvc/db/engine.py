"""Engine and session factory; the URL comes from settings or the embedded cluster."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from gridsvc.settings import get_settings

log = logging.getLogger(__name__)


def database_url() -> str:
    """The configured URL, or the embedded cluster's (started and created if needed)."""
    settings = get_settings()
    if settings.db.database_url:
        return settings.db.database_url
    from gridsvc.localdb import embedded_cluster

    cluster = embedded_cluster()
    cluster.start()
    return cluster.ensure_database()


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine (pre-pinged, so a restarted database is reconnected)."""
    settings = get_settings()
    return create_engine(
        database_url(),
        pool_size=settings.db.pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=True,
        future=True,
    )


@lru_cache
def _session_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def get_session() -> Iterator[Session]:
    """One session per request; committed by the service that writes, rolled back on error."""
    session = _session_factory()()
    try:
        yield session
    except Exception:
        session.rollback()
        raise
    finally:
        try:
            session.close()
        except DBAPIError as exc:
            # The database went away after the response was decided (a restart): the
            # connection is already invalidated and the server rolled the transaction back.
            # Raising here would cut the client's connection instead of answering it.
            if not exc.connection_invalidated:
                raise
            log.warning("database connection lost while closing a session: %s", exc.orig)
