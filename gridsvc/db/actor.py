"""Who is acting and why, as transaction-local settings the audit trigger reads (migration 0005).

A session only remembers them (:func:`remember`); they reach the database in one round trip,
just before the first statement of a transaction that may write: an ORM flush, an INSERT,
UPDATE or DELETE, text SQL that is not a plain SELECT, or a raw COPY (:func:`before_write`,
called by gridsvc.repositories.bulk). A request that only reads never sends them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import TextClause, event, text
from sqlalchemy.orm import ORMExecuteState, Session

_ACTOR = "gridsvc_actor"
_REASON = "gridsvc_reason"
#: The transaction (or SAVEPOINT) the settings were sent in; cleared when it ends, since a
#: rolled-back SAVEPOINT takes its set_config with it.
_SENT = "gridsvc_settings_sent"
_READ_ONLY = "gridsvc_read_only"  # gridsvc.db.engine.READ_ONLY (which imports this module)
_SET = "SELECT set_config('gridsvc.actor', :actor, true), set_config('gridsvc.reason', :why, true)"


def actor(session: Session) -> str:
    """The session's actor ('' when none was named)."""
    return str(session.info.get(_ACTOR, ""))


def reason(session: Session) -> str:
    """Why the session's writes are made ('' when not said)."""
    return str(session.info.get(_REASON, ""))


def remember(session: Session, *, actor: str | None = None, reason: str | None = None) -> None:
    """Name the actor and/or the reason for the session's writes from now on (sent with the
    next write; at once if this transaction already sent them, so a change is seen)."""
    if actor is not None:
        session.info[_ACTOR] = actor
    if reason is not None:
        session.info[_REASON] = reason
    if session.info.get(_SENT) is not None:
        _send(session)


def before_write(session: Session) -> None:
    """Send the actor and reason to this transaction, once, if there are any (a read-only
    session, see gridsvc.db.engine.read_only, has no transaction: it may not write)."""
    if session.info.get(_READ_ONLY):
        raise RuntimeError("a write in a read-only (autocommit) session")
    if session.info.get(_SENT) is None and (session.info.get(_ACTOR) or session.info.get(_REASON)):
        _send(session)


def _send(session: Session) -> None:
    connection = session.connection()  # begins the transaction first (which clears _SENT)
    session.info[_SENT] = session.get_nested_transaction() or session.get_transaction()
    connection.execute(text(_SET), {"actor": actor(session), "why": reason(session)})


def _reads_only(statement: Any) -> bool:
    if isinstance(statement, TextClause):
        return statement.text.lstrip()[:6].upper() == "SELECT"
    return bool(getattr(statement, "is_select", False))


@event.listens_for(Session, "after_begin")
def _on_begin(session: Session, _transaction: Any, _connection: Any) -> None:
    """A new transaction (also after a commit) has not been told yet."""
    session.info[_SENT] = None


@event.listens_for(Session, "after_transaction_end")
def _on_end(session: Session, transaction: Any) -> None:
    """The transaction or SAVEPOINT the settings went to is over: send them again next time
    (after a released SAVEPOINT that costs one spare set_config; after a rolled-back one the
    settings are gone)."""
    if session.info.get(_SENT) is transaction:
        session.info[_SENT] = None


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    """A statement that may write is preceded by the settings."""
    if not _reads_only(state.statement):
        before_write(state.session)


@event.listens_for(Session, "before_flush")
def _on_flush(session: Session, _context: Any, _instances: Any) -> None:
    """An ORM flush writes: the settings go first."""
    before_write(session)
