"""Engine and session factory; the URL comes from settings or the embedded cluster."""

from __future__ import annotations

import logging
import select
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

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


def _closed_by_server(dbapi_connection: Any) -> bool:
    """True when the server has closed this idle connection (a restart, an idle timeout, an
    administrator): it then has sent its error and end-of-file, so the socket is readable.
    A local poll of the socket, not a round trip. An idle pooled connection has nothing else
    to read (gridsvc does not LISTEN), so anything readable retires it."""
    conn = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    if conn.closed or conn.broken:
        return True
    try:
        poller = select.poll()  # not select.select: that fails above file descriptor 1023
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.Error):
        return True


def _check_out(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Replace a pooled connection the server closed before handing it out (no ping)."""
    if _closed_by_server(dbapi_connection):
        raise DisconnectionError("the server closed this pooled connection")


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine. No ping per checkout: a connection the server closed (a
    restart) is noticed by a local socket check and replaced, an old one recycled, and a
    connection lost mid-request invalidates the pool's older connections (SQLAlchemy)."""
    settings = get_settings()
    engine = create_engine(
        database_url(),
        pool_size=settings.db.pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_recycle=settings.db.pool_recycle_seconds,
        future=True,
    )
    event.listen(engine.pool, "checkout", _check_out)
    return engine


@lru_cache
def _session_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


#: session.info key of a session that only reads, statement by statement (autocommit).
READ_ONLY = "gridsvc_read_only"


def read_only(session: Session) -> None:
    """Let the session's work be plain reads: each statement on its own (autocommit), so no
    BEGIN and ROLLBACK round trips, and handing the connection back sends nothing. Only for
    a session that has not begun and is bound to the engine (otherwise it keeps its
    transaction, e.g. a test's). A write in it is refused (gridsvc.db.actor)."""
    if session.in_transaction() or not isinstance(session.get_bind(), Engine):
        return
    session.info[READ_ONLY] = True
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def _needs_io_to_close(session: Session) -> bool:
    return session.in_transaction() and not session.info.get(READ_ONLY)


async def get_session() -> AsyncIterator[Session]:
    """One session per request; committed by the service that writes, rolled back on error.

    Async, so opening it costs the request no thread hop (a new Session does no I/O); only
    ending one with a transaction open is handed to a thread, as the route's work was."""
    session = _session_factory()()
    try:
        yield session
    except Exception:
        await run_in_threadpool(_close, session)
        raise
    else:
        if _needs_io_to_close(session):
            await run_in_threadpool(_close, session)
        else:
            _close(session)  # no connection, or an autocommit one: nothing to send


def _close(session: Session) -> None:
    try:
        session.close()
    except DBAPIError as exc:
        # The database went away after the response was decided (a restart): the
        # connection is already invalidated and the server rolled the transaction back.
        # Raising here would cut the client's connection instead of answering it.
        if not exc.connection_invalidated:
            raise
        log.warning("database connection lost while closing a session: %s", exc.orig)
