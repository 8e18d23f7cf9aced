"""Engine and session factory; the URL comes from settings or the embedded cluster."""

from __future__ import annotations

import itertools
import logging
import re
import select
import time
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

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


def _make_engine(url: str) -> Engine:
    """An engine with gridsvc's pool rules. No ping per checkout: a connection the server
    closed (a restart, a failover) is noticed by a local socket check and replaced, an old
    one recycled, and a connection lost mid-request invalidates the pool's older connections
    (SQLAlchemy)."""
    settings = get_settings()
    engine = create_engine(
        url,
        pool_size=settings.db.pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_recycle=settings.db.pool_recycle_seconds,
        future=True,
    )
    event.listen(engine.pool, "checkout", _check_out)
    return engine


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine of the primary: every write, and reads that must see one."""
    return _make_engine(database_url())


@lru_cache
def _session_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


# -- read replicas -------------------------------------------------------------------------

#: Request methods that only read: their session may be a replica's (HTTP says they are safe;
#: gridsvc's GET and HEAD routes write nothing).
READ_METHODS = frozenset({"GET", "HEAD"})
#: Cookie and header carrying a client's last commit position (a PostgreSQL LSN, "16/B374D848").
LSN_COOKIE = "gridsvc_lsn"
LSN_HEADER = "X-Gridsvc-LSN"
#: Seconds a replica whose connection failed is left out before it is tried again.
REPLICA_RETRY_SECONDS = 5.0
_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")


class Replica:
    """One configured replica: its engine and sessions, and until when it is left out."""

    def __init__(self, url: str) -> None:
        self.engine = _make_engine(url)
        self.sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.down_until = 0.0

    @property
    def available(self) -> bool:
        """False for a few seconds after a connection to it failed."""
        return time.monotonic() >= self.down_until

    def mark_down(self) -> None:
        """Leave it out for REPLICA_RETRY_SECONDS (its reads go to the next one meanwhile)."""
        self.down_until = time.monotonic() + REPLICA_RETRY_SECONDS

    def has_replayed(self, lsn: str) -> bool:
        """True when this server has applied the WAL up to `lsn` (a standby: replayed; a
        server that is a primary now, e.g. after a failover: written)."""
        with self.engine.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
                        " ELSE pg_current_wal_lsn() END >= CAST(:lsn AS pg_lsn)"
                    ),
                    {"lsn": lsn},
                ).scalar()
            )


@lru_cache
def replicas() -> tuple[Replica, ...]:
    """The configured replicas (GRIDSVC_REPLICA_URLS); none by default."""
    return tuple(Replica(url) for url in get_settings().db.replica_url_list)


_turn = itertools.count()


def _next_replicas() -> list[Replica]:
    """The available replicas, starting with the next one in turn (round robin)."""
    pool = replicas()
    start = next(_turn)
    ordered = [pool[(start + i) % len(pool)] for i in range(len(pool))]
    return [r for r in ordered if r.available]


def commit_position(request: Request) -> str | None:
    """The commit position the client must see (header, else cookie), if well formed."""
    value = request.headers.get(LSN_HEADER) or request.cookies.get(LSN_COOKIE)
    return value if value and _LSN.fullmatch(value) else None


@lru_cache
def _position_engine() -> Engine:
    """A small pool of its own for current_position: the request's session may still hold
    its connection from the main pool when the position is read, and waiting on that pool for
    a second connection could starve it under many concurrent writes."""
    engine = create_engine(database_url(), pool_size=2, max_overflow=8, pool_timeout=5)
    event.listen(engine.pool, "checkout", _check_out)
    return engine


def current_position() -> str:
    """The primary's WAL position now: every transaction committed so far lies below it."""
    with _position_engine().connect() as conn:
        return str(conn.execute(text("SELECT pg_current_wal_lsn()")).scalar())


async def _choose(request: Request | None) -> tuple[sessionmaker[Session], Replica | None]:
    """Where this request's session goes: a replica for a read (one that has replayed the
    client's last write, if it carries one), else the primary."""
    if request is None or request.method not in READ_METHODS or not replicas():
        return _session_factory(), None
    position = commit_position(request)
    for replica in _next_replicas():
        if position is None:
            return replica.sessions, replica
        try:
            if await run_in_threadpool(replica.has_replayed, position):
                return replica.sessions, replica
            return _session_factory(), None  # behind: the primary has the client's write
        except (OperationalError, InterfaceError) as exc:
            log.warning("replica unreachable, trying the next: %s", exc.orig)
            replica.mark_down()
    return _session_factory(), None  # no replica answers: the primary serves reads too


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


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request; committed by the service that writes, rolled back on error.
    A read goes to a replica when there are some (see _choose), everything else to the
    primary.

    Async, so opening it costs the request no thread hop (a new Session does no I/O); only
    ending one with a transaction open is handed to a thread, as the route's work was."""
    factory, replica = await _choose(request)
    session = factory()
    try:
        yield session
    except Exception as exc:
        if replica is not None and isinstance(exc, (OperationalError, InterfaceError)):
            log.warning("replica failed, left out for %.0f s: %s", REPLICA_RETRY_SECONDS, exc)
            replica.mark_down()  # the client retries; its next reads go to another member
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
