"""Request-wide input bounds enforced before FastAPI parses a body."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geodata.errors import GeodataError
from geodata.limits import check_json_depth
from gridsvc.api.problems import problem
from gridsvc.settings import get_settings


class JsonDepthLimit:
    """Refuse a JSON body nested deeper than GRIDSVC_MAX_JSON_DEPTH with a 422 problem.

    Python's JSON parser and pydantic fail deep inside nested arrays (RecursionError, "maximum
    serialization depth") as 500s; the body is scanned once, linearly, before either sees it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer a JSON request's body, check its nesting, then replay it to the app."""
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # client gone: let the app see it
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            check_json_depth(body, get_settings().app.input_limits(), name="the request body")
        except GeodataError as exc:
            await problem(422, "Invalid request", str(exc))(scope, receive, send)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


def _is_json(scope: Scope) -> bool:
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            return b"json" in value.lower()
    return False


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive
