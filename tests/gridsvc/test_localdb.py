"""The embedded cluster: what it says when PostgreSQL is missing, and its status."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridsvc.errors import EmbeddedDatabaseError
from gridsvc.localdb import find_pg_bin


def test_missing_binaries_name_the_package(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedDatabaseError) as err:
        find_pg_bin(tmp_path / "nowhere", roots=(tmp_path,), search_path=False)
    assert "apt-get install -y postgresql-15 postgresql-15-postgis-3" in err.value.detail
    assert "GRIDSVC_DATABASE_URL" in err.value.detail


def test_found_binaries_are_usable() -> None:
    folder = find_pg_bin()
    assert (folder / "initdb").exists() and (folder / "pg_ctl").exists()


def test_status_reports_a_running_cluster(database_url: str) -> None:
    from gridsvc.localdb import embedded_cluster
    from gridsvc.settings import get_settings

    if get_settings().db.database_url:
        pytest.skip("an external database is configured")
    info = embedded_cluster().status()
    assert info["running"] is True and isinstance(info["port"], int)
    assert "***" in str(info["url"])  # the password is never shown
