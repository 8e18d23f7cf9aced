"""The ``Idempotency-Key`` header of the workbench's writes (intake, visits, case steps)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header, Response
from fastapi.encoders import jsonable_encoder
from sqlalchemy.orm import Session

from gridsvc.auth.principal import Principal
from gridsvc.services import idempotency

#: The optional header: a client-made key (a UUID) naming one write, sent again on a retry.
IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=idempotency.MAX_KEY,
        description="a key you generate per write (a UUID); a retry with it gets the first "
        "answer instead of writing twice",
    ),
]


def once(
    session: Session,
    user: Principal,
    key: str | None,
    request: tuple[Any, ...],
    response: Response,
    status: int,
    call: Callable[[], Any],
) -> Any:
    """Run the write `call` once per key: a retry with the same key and request gets the
    first answer (with ``Idempotency-Replayed: true``); without a key, just run it."""
    if key is None:
        return call()
    replay = idempotency.claim(session, user.id, key, idempotency.fingerprint(*request))
    if replay is not None:
        response.status_code = replay.status
        response.headers["Idempotency-Replayed"] = "true"
        return replay.body
    result = jsonable_encoder(call())
    idempotency.remember(session, user.id, key, status, result)
    return result
