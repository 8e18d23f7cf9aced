"""Cross-site request forgery: the one check of writes signed by the session cookie.

SameSite=Strict keeps other *sites* from sending the cookie, but another origin on the same
host (another port) is the same site, and cookies do not separate ports. So a write (POST,
PUT, PATCH, DELETE) authenticated by the cookie must show an ``Origin`` (or, without one, a
``Referer``) of this service itself or of a configured public origin, or carry the session's
CSRF token (an HMAC of the HttpOnly session cookie, rendered into our pages; header
``X-CSRF-Token`` or form field ``csrf_token``). Bearer-token clients are not affected: a
browser never adds an Authorization header by itself.

The sign-in form has no session yet: it needs a token from a pre-session cookie repeated in a
hidden field, and no foreign Origin (a neighbour on the same host can plant cookies, but not
its browser's Origin header).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

from gridsvc.errors import Forbidden
from gridsvc.security import csrf_token_for, same_secret
from gridsvc.settings import get_settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
#: Pre-session cookie of the sign-in form (HttpOnly; its value is repeated in the form).
LOGIN_CSRF_COOKIE = "gridsvc_login_csrf"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> str | None:
    """scheme://host:port of a URL, normalised (default ports spelled out); None if not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or port is None:
        return None
    return f"{parts.scheme.lower()}://{parts.hostname.lower()}:{port}"


def _allowed_origins(request: Request) -> set[str]:
    own = _origin(f"{request.url.scheme}://{request.url.netloc}")
    configured = (_origin(o) for o in get_settings().auth.public_origin_list)
    return {o for o in (own, *configured) if o}


def origin_verdict(request: Request) -> tuple[bool | None, str]:
    """Whether the request says it comes from our own pages: True, False (another origin, or
    "null"), None (neither Origin nor Referer sent); and the origin named."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed:
        return None, ""
    origin = _origin(claimed)
    return origin is not None and origin in _allowed_origins(request), claimed.strip()


async def supplied_token(request: Request) -> str | None:
    """The CSRF token sent with the request: the header, else a form field."""
    token = request.headers.get(CSRF_HEADER)
    if token:
        return token
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_cookie_request(request: Request, session_token: str) -> None:
    """Refuse (403) a cookie-signed write that neither comes from our origin nor carries the
    session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    same, claimed = origin_verdict(request)
    if same:
        return
    if same_secret(await supplied_token(request), csrf_token_for(session_token)):
        return
    where = f"from {claimed}" if claimed else "without Origin or Referer"
    raise Forbidden(
        f"cross-site request refused: a {request.method} signed by the session cookie came "
        f"{where} and without a valid {CSRF_HEADER}; send it from this service's own pages, "
        "or use an Authorization: Bearer token"
    )


def check_sign_in_form(request: Request, supplied: str | None) -> None:
    """Refuse (403) a sign-in form sent from another origin or without its form token."""
    same, claimed = origin_verdict(request)
    if same is False:
        raise Forbidden(f"cross-site sign-in refused: the form was sent from {claimed}")
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or not same_secret(supplied, cookie):
        raise Forbidden(
            "the sign-in form has expired or did not come from this service; reload the "
            "sign-in page and try again"
        )


def new_login_token() -> str:
    """A fresh random token for the sign-in form's pre-session cookie."""
    return secrets.token_urlsafe(24)
