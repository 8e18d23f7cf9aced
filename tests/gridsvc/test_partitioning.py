"""The schema under declarative partitioning (issue 17, item 5: the province plan in the
README). The audit log, the first table the plan partitions by time, is rebuilt as a
partitioned table (RANGE on `at`, one partition per month and a default one): gridsvc's
audit triggers write into it, its append-only rule holds, the audit API reads it, and a
street's query for a month touches that month's partition only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from tests.conftest import scratch_database, seed_two_cells

PASSWORD = "partitioning-password"
COMMUNITY = "320102780001"


def _month_bounds(now: datetime) -> tuple[str, str]:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.isoformat(), end.isoformat()


def partition_audit_log(url: str, now: datetime) -> str:
    """Rebuild audit_event as RANGE (at) partitions: this month's and a default one; returns
    this month's partition name. Keeps the rows, the id sequence, the indexes and triggers."""
    start, end = _month_bounds(now)
    month = f"audit_event_{now:%Y_%m}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_event RENAME TO audit_event_flat"))
        conn.execute(
            text(
                "CREATE TABLE audit_event (LIKE audit_event_flat INCLUDING DEFAULTS) "
                "PARTITION BY RANGE (at)"
            )
        )
        # A partitioned table's primary key must hold its partition key.
        conn.execute(text("ALTER TABLE audit_event ADD PRIMARY KEY (id, at)"))
        for name, columns in (
            ("ix_audit_event_street_at", "street_id, at"),
            ("ix_audit_event_community_at", "community_id, at"),
            ("ix_audit_event_table_row", "table_name, row_id"),
        ):
            conn.execute(text(f"ALTER INDEX {name} RENAME TO {name}_flat"))
            conn.execute(text(f"CREATE INDEX {name} ON audit_event ({columns})"))
        conn.execute(
            text(
                f"CREATE TABLE {month} PARTITION OF audit_event "
                f"FOR VALUES FROM ('{start}') TO ('{end}')"
            )
        )
        conn.execute(text("CREATE TABLE audit_event_default PARTITION OF audit_event DEFAULT"))
        conn.execute(text("INSERT INTO audit_event SELECT * FROM audit_event_flat"))
        sequence = conn.execute(
            text("SELECT pg_get_serial_sequence('audit_event_flat', 'id')")
        ).scalar_one()
        conn.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY audit_event.id"))
        conn.execute(text("DROP TABLE audit_event_flat"))
        for trigger, when in (
            ("audit_event_append_only", "BEFORE UPDATE OR DELETE ON audit_event FOR EACH ROW"),
            ("audit_event_no_truncate", "BEFORE TRUNCATE ON audit_event FOR EACH STATEMENT"),
        ):
            conn.execute(
                text(
                    f"CREATE TRIGGER {trigger} {when} "
                    "EXECUTE FUNCTION gridsvc_refuse_audit_event_edit()"
                )
            )
    engine.dispose()
    return month


@pytest.fixture
def partitioned(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A scratch database with the two-cell community whose audit log is partitioned."""
    from gridsvc.db import engine as engine_module
    from gridsvc.settings import get_settings

    caches = (get_settings, engine_module.get_engine, engine_module._session_factory)
    with scratch_database("gridsvc_partitioning") as url:
        seed_two_cells(url, "320102780", COMMUNITY, PASSWORD)
        month = partition_audit_log(url, datetime.now(UTC))
        monkeypatch.setenv("GRIDSVC_DATABASE_URL", url)
        monkeypatch.setenv("GRIDSVC_LOAD_DEMO", "false")
        for cached in caches:
            cached.cache_clear()
        try:
            yield url, month
        finally:
            engine_module.get_engine().dispose()
            monkeypatch.delenv("GRIDSVC_DATABASE_URL")
            for cached in caches:
                cached.cache_clear()


def test_gridsvc_writes_and_reads_a_partitioned_audit_log(partitioned: tuple[str, str]) -> None:
    from gridsvc.main import create_app

    url, month = partitioned
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'audit_event'").fetchone()
        assert kind == ("p",)  # partitioned
        seeded = conn.execute(f"SELECT count(*) FROM {month}").fetchone()[0]
        assert seeded > 0  # the seed's writes moved into this month's partition

    with TestClient(create_app()) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": "boss", "password": PASSWORD}
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        made = client.post(
            "/api/v1/people",
            json={"name": "分区表", "community": COMMUNITY, "phone": "13600000000"},
        )
        assert made.status_code == 201, made.text
        log = client.get("/api/v1/audit", params={"table": "person"})
        assert log.status_code == 200, log.text
        assert made.json()["id"] in {e.get("row_id") for e in log.json()["items"]}, log.json()

    with psycopg.connect(dsn, autocommit=True) as conn:
        # The trigger wrote into this month's partition, naming the actor.
        actor = conn.execute(
            f"SELECT actor FROM {month} WHERE table_name = 'person' AND row_id = %s",
            (made.json()["id"],),
        ).fetchone()
        assert actor == ("boss",)
        # Still append-only.
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("DELETE FROM audit_event")
        # A street's month reads one partition (pruned at plan time).
        start, end = _month_bounds(datetime.now(UTC))
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "EXPLAIN SELECT * FROM audit_event WHERE street_id = 1 "
                f"AND at >= '{start}' AND at < '{end}'"
            )
        )
        assert month in plan and "audit_event_default" not in plan, plan
