"""Settings refuse default secrets outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gridsvc.settings import AuthSettings, Settings


def test_production_refuses_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDSVC_ENVIRONMENT", "production")
    monkeypatch.setenv("GRIDSVC_SECRET_KEY", "changeme")
    with pytest.raises(ValidationError, match="GRIDSVC_SECRET_KEY"):
        AuthSettings()
    monkeypatch.setenv("GRIDSVC_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("GRIDSVC_ADMIN_PASSWORD", "admin")
    with pytest.raises(ValidationError, match="default password"):
        AuthSettings()
    monkeypatch.setenv("GRIDSVC_ADMIN_PASSWORD", "a-real-one-2026")
    assert AuthSettings().secret_key == "x" * 40


def test_development_generates_and_keeps_a_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GRIDSVC_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("GRIDSVC_SECRET_KEY", raising=False)
    first = Settings().jwt_secret()
    assert len(first) >= 48 and (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert Settings().jwt_secret() == first


def test_an_unknown_time_zone_is_refused_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """One time zone for every local date (GRIDSVC_LOCAL_TIMEZONE); a typo fails loudly."""
    from pydantic import ValidationError

    from gridsvc.settings import AppSettings

    monkeypatch.setenv("GRIDSVC_LOCAL_TIMEZONE", "Asia/Shangai")
    with pytest.raises(ValidationError, match="unknown time zone 'Asia/Shangai'"):
        AppSettings()
    monkeypatch.setenv("GRIDSVC_LOCAL_TIMEZONE", "Asia/Urumqi")
    assert AppSettings().local_timezone == "Asia/Urumqi"
