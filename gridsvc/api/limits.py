"""Request-wide input bounds enforced before FastAPI parses a body."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geodata.errors import GeodataError
from geodata.limits import check_json_depth
from gridsvc.api.problems import problem
from gridsvc.errors import TooLarge
from gridsvc.settings import get_settings


class JsonBodyLimits:
    """Refuse a JSON body larger than GRIDSVC_MAX_UPLOAD_BYTES (413) or nested deeper than
    GRIDSVC_MAX_JSON_DEPTH (422), with a problem body, before FastAPI parses it.

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
        app_settings = get_settings().app
        limit = app_settings.max_upload_bytes
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # client gone: let the app see it
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                detail = f"the request body is larger than the limit of {limit // 2**20} MiB"
                await problem(413, TooLarge.title, detail)(scope, receive, send)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            check_json_depth(body, app_settings.input_limits(), name="the request body")
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
