"""Passwords (argon2 via pwdlib), access tokens (JWT via PyJWT) and CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from pwdlib import PasswordHash

from gridsvc.errors import NotAuthenticated
from gridsvc.settings import get_settings


@lru_cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    """An argon2 hash of the password."""
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """True when the password matches the stored hash."""
    return _hasher().verify(password, password_hash)


@lru_cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify_no_password(password: str) -> bool:
    """Spend the time of one real verification (for unknown users), and answer False."""
    _hasher().verify(password, _dummy_hash())
    return False


def create_access_token(
    user_id: int, role: str, version: int = 0, minutes: int | None = None
) -> str:
    """A signed JWT naming the user's immutable id, role and token version, valid for the
    configured minutes (or until the user's token version is bumped)."""
    settings = get_settings()
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "ver": version,
        "role": role,
        "iat": now,
        "jti": secrets.token_urlsafe(8),
        "exp": now + timedelta(minutes=minutes or settings.auth.token_minutes),
    }
    return jwt.encode(claims, settings.jwt_secret(), algorithm=settings.auth.jwt_algorithm)


def decode_access_token(token: str) -> dict[str, Any]:
    """The token's claims; NotAuthenticated when it is invalid or expired."""
    settings = get_settings()
    try:
        return jwt.decode(
            token,
            settings.jwt_secret(),
            algorithms=[settings.auth.jwt_algorithm],
            options={"require": ["sub", "ver", "exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("the access token has expired; sign in again") from exc
    except jwt.PyJWTError as exc:
        raise NotAuthenticated(f"invalid access token: {exc}") from exc


def csrf_token_for(session_token: str) -> str:
    """The CSRF token of a web session: an HMAC of its session cookie.

    Bound to the (HttpOnly) session, so another site on the same host (cookies do not
    separate ports) can neither read it from a cookie nor plant a matching pair."""
    key = get_settings().jwt_secret().encode()
    return hmac.new(key, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a supplied token with the expected one."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())
