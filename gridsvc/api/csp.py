"""Security headers on every response, and the endpoint that counts CSP violation reports.

:class:`SecurityHeaders` gives a request a fresh nonce when its page renders inline scripts
(:func:`nonce`) and sets the policy of :mod:`gridsvc.csp` and
``X-Content-Type-Options: nosniff`` on every response. Browsers post violations to
:data:`gridsvc.csp.REPORT_PATH`; they are logged and counted, so a test can assert there were none.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import Counter, deque
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridsvc import csp
from gridsvc.api.deps import allowed
from gridsvc.errors import InvalidInput, TooLarge
from gridsvc.schemas import CspSummaryOut

log = logging.getLogger(__name__)

#: A violation report is a few hundred bytes; anything much larger is not one.
MAX_REPORT_BYTES = 16_384


#: Where a request keeps its nonce (in the ASGI scope's state), once a page asked for one.
_NONCES = "csp_nonces"


class SecurityHeaders:
    """ASGI middleware: the CSP and nosniff on every HTTP response; a nonce in the policy of
    the responses whose page asked for one (:func:`nonce`) — the API's JSON needs none, so the
    hot paths do not pay for one."""

    def __init__(self, app: ASGIApp, img_sources: list[str] | None = None) -> None:
        self.app = app
        self.img_sources = list(img_sources or [])
        self._without_nonce = csp.policy(img_sources=self.img_sources)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to its response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonces: list[str] = []  # filled by nonce(request) when a page renders inline scripts
        scope.setdefault("state", {})[_NONCES] = nonces

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = (
                    csp.policy(nonce=nonces[0], img_sources=self.img_sources)
                    if nonces
                    else self._without_nonce
                )
                headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def nonce(request: Request) -> str:
    """The nonce of this request's policy, made on first use (:class:`SecurityHeaders` puts it
    in the response's policy)."""
    nonces: list[str] = request.scope["state"][_NONCES]
    if not nonces:
        nonces.append(secrets.token_urlsafe(18))
    return nonces[0]


class ViolationLog:
    """Violation reports received since start: a count, per directive, and the latest few."""

    def __init__(self, keep: int = 50, log_per_minute: int = 60) -> None:
        self._lock = threading.Lock()
        self._log_per_minute = log_per_minute
        self._window = (0.0, 0)  # start of this minute's window, reports logged in it
        self.count = 0
        self.by_directive: Counter[str] = Counter()
        self.recent: deque[dict[str, str]] = deque(maxlen=keep)

    def add(self, report: dict[str, Any]) -> None:
        """Count and log one report (either the report-uri or the Reporting API shape)."""
        body = report.get("csp-report") or report.get("body") or report
        if not isinstance(body, dict):
            body = {}

        def field(*names: str) -> str:
            for name in names:
                if body.get(name):
                    return str(body[name])[:300]
            return ""

        entry = {
            "directive": field("effective-directive", "effectiveDirective", "violated-directive"),
            "blocked": field("blocked-uri", "blockedURL"),
            "document": field("document-uri", "documentURL"),
            "sample": field("script-sample", "sample"),
        }
        now = time.monotonic()
        with self._lock:
            self.count += 1
            self.by_directive[entry["directive"] or "?"] += 1
            self.recent.append(entry)
            start, logged = self._window if now - self._window[0] < 60 else (now, 0)
            self._window = (start, logged + 1)
        # Every report is counted; a flood (anyone may post) is not written to the log line by line.
        if logged > self._log_per_minute:
            return
        if logged == self._log_per_minute:
            log.warning("CSP violations: more than %d a minute, the rest only counted", logged)
            return
        log.warning(
            "CSP violation: %s blocked %s on %s",
            entry["directive"],
            entry["blocked"],
            entry["document"],
        )

    def summary(self) -> dict[str, Any]:
        """The figures as JSON-ready data."""
        with self._lock:
            return {
                "count": self.count,
                "by_directive": dict(self.by_directive),
                "recent": list(self.recent),
            }


violations = ViolationLog()
router = APIRouter(tags=["security"])


@router.post(csp.REPORT_PATH, status_code=204, include_in_schema=False)
async def report_violation(request: Request) -> Response:
    """Browsers post Content-Security-Policy violation reports here; each is counted and logged."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REPORT_BYTES:
        raise TooLarge(f"a violation report may have at most {MAX_REPORT_BYTES} bytes")
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_REPORT_BYTES:
            raise TooLarge(f"a violation report may have at most {MAX_REPORT_BYTES} bytes")
    try:
        parsed = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput("a violation report must be JSON") from exc
    reports = parsed if isinstance(parsed, list) else [parsed]
    if not reports or not all(isinstance(r, dict) for r in reports):
        raise InvalidInput("a violation report must be a JSON object (or a list of them)")
    for report in reports[:20]:
        violations.add(report)
    return Response(status_code=204)


@router.get(
    csp.REPORT_PATH,
    dependencies=[Depends(allowed("audit.read"))],
    response_model=CspSummaryOut,
)
def violation_summary() -> dict[str, Any]:
    """How many Content-Security-Policy violations browsers reported since the server started,
    per directive, and the latest ones (staff who may read the audit log)."""
    return violations.summary()


def docs_router(app_title: str, openapi_url: str, static_url: str) -> APIRouter:
    """Swagger UI (/docs, served offline) with its inline start-up script nonced."""
    docs = APIRouter(include_in_schema=False)
    redirect_url = "/docs/oauth2-redirect"

    @docs.get("/docs")
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app_title} - Swagger UI",
            oauth2_redirect_url=redirect_url,
            swagger_js_url=f"{root}{static_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{static_url}/swagger-ui.css",
            swagger_favicon_url=f"{root}{static_url}/favicon.png",
        )
        return HTMLResponse(csp.with_nonce(bytes(page.body).decode(), nonce(request)))

    @docs.get(redirect_url)
    def swagger_redirect(request: Request) -> HTMLResponse:
        page = get_swagger_ui_oauth2_redirect_html()
        return HTMLResponse(csp.with_nonce(bytes(page.body).decode(), nonce(request)))

    return docs
