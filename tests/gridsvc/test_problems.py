"""Database failures reach the client as the right problem: a retryable conflict (409) for
concurrent writers PostgreSQL stopped, an outage (503) otherwise — never a 500."""

from __future__ import annotations

import asyncio
import json

import psycopg.errors
import pytest
from sqlalchemy.exc import OperationalError

from gridsvc.api.problems import _database_unavailable


@pytest.mark.parametrize(
    ("cause", "status"),
    [
        (psycopg.errors.DeadlockDetected("deadlock detected"), 409),
        (psycopg.errors.SerializationFailure("could not serialize access"), 409),
        (psycopg.OperationalError("connection refused"), 503),
    ],
)
def test_database_errors_map_to_problems(cause: Exception, status: int) -> None:
    response = asyncio.run(_database_unavailable(None, OperationalError("SELECT 1", {}, cause)))  # type: ignore[arg-type]
    assert response.status_code == status
    body = json.loads(bytes(response.body))
    assert body["status"] == status and body["detail"]
