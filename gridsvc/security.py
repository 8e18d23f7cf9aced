"""Passwords (argon2 via pwdlib) and access tokens (JWT via PyJWT)."""

from __future__ import annotations

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


def create_access_token(subject: str, role: str, minutes: int | None = None) -> str:
    """A signed JWT naming the user and role, valid for the configured minutes."""
    settings = get_settings()
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": subject,
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
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("the access token has expired; sign in again") from exc
    except jwt.PyJWTError as exc:
        raise NotAuthenticated(f"invalid access token: {exc}") from exc
