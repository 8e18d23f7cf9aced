"""Read-your-writes with read replicas: a successful write tells the client its commit position.

Only installed when replicas are configured. After a write (any method but GET/HEAD/OPTIONS)
answered below 400, the response carries the primary's WAL position in the ``X-Gridsvc-LSN``
header and a short-lived cookie of the same value. A later read that sends either back goes to
a replica only if that replica has replayed that far, else to the primary
(gridsvc.db.engine.get_session): so a write followed at once by a read of it sees it, from a
browser (the cookie) or an API client (the header).
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridsvc.db.engine import LSN_COOKIE, LSN_HEADER, READ_METHODS, current_position
from gridsvc.settings import get_settings

log = logging.getLogger(__name__)


class ReadYourWrites:
    """ASGI middleware adding the commit position to the response of every successful write."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.max_age = get_settings().db.read_your_writes_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass reads through; stamp successful writes' responses with the WAL position."""
        if scope["type"] != "http" or scope["method"] in READ_METHODS | {"OPTIONS"}:
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                try:
                    # Read after the service committed: at or past the write's commit record.
                    position = await run_in_threadpool(current_position)
                except DBAPIError as exc:  # the primary went away just after the commit
                    log.warning("no commit position for the client: %s", exc.orig)
                else:
                    headers = MutableHeaders(scope=message)
                    headers[LSN_HEADER] = position
                    headers.append(
                        "Set-Cookie",
                        f"{LSN_COOKIE}={position}; Max-Age={self.max_age}; Path=/; "
                        "HttpOnly; SameSite=Lax",
                    )
            await send(message)

        await self.app(scope, receive, stamped)
