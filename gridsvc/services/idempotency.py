"""Idempotency keys: a write sent again with the same ``Idempotency-Key`` gets the first
answer, not a second write — what lets a phone retry a report, a visit or a case step after
a lost answer (the offline queue) and have it stored exactly once.

The key is claimed (inserted) in the transaction of the write itself, so it is committed with
the write or not at all: a write that failed leaves no key and may be retried. A second
request with the key waits on the first's row lock and then replays its answer; a key reused
for a different request is refused. The answer is stored just after the write's commit; if the
process dies in between, a retry learns that the write was made but its answer is lost (409).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from gridsvc.errors import Conflict, InvalidInput
from gridsvc.models import IdempotencyKey

#: Longest key accepted (a UUID is 36 characters).
MAX_KEY = 128


@dataclass(frozen=True)
class Replay:
    """The answer the first request with the key got."""

    status: int
    body: Any


def fingerprint(*parts: Any) -> str:
    """A digest of what the request asks (route, target, body): the same key must come with
    the same request."""
    data = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def _check_key(key: str) -> None:
    if not (0 < len(key) <= MAX_KEY) or not key.isascii() or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters (e.g. a UUID)"
        )


_CLAIM = text(
    "INSERT INTO idempotency_key (user_id, key, fingerprint) VALUES (:user, :key, :fp) "
    "ON CONFLICT (user_id, key) DO NOTHING RETURNING key"
)


def claim(session: Session, user_id: int, key: str, fp: str) -> Replay | None:
    """Hold the key for the write about to be made in this transaction (None: go on), or the
    first answer if the key was used before (InvalidInput if for another request)."""
    _check_key(key)
    if session.execute(_CLAIM, {"user": user_id, "key": key, "fp": fp}).first() is not None:
        return None
    row = session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )
    assert row is not None  # the conflicting row is committed (we waited for it)
    if row.fingerprint != fp:
        raise InvalidInput(
            f"Idempotency-Key {key!r} was already used for a different request; "
            "send a new key for a new request"
        )
    if row.status is None:
        raise Conflict(
            f"the request with Idempotency-Key {key!r} was made, but its answer was not kept; "
            "reload to see its result"
        )
    return Replay(row.status, row.body)


def remember(session: Session, user_id: int, key: str, status: int, body: Any) -> None:
    """Keep the answer of the write made under the key (after the write's commit)."""
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(status=status, body=body)
    )
    session.commit()
