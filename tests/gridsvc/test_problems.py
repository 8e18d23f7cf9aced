"""Database failures reach the client as the right problem: a retryable conflict (409) for
concurrent writers PostgreSQL stopped, an outage (503) otherwise — never a 500."""

from __future__ import annotations

import psycopg.errors
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from gridsvc.api import problems


@pytest.mark.parametrize(
    ("cause", "status"),
    [
        (psycopg.errors.DeadlockDetected("deadlock detected"), 409),
        (psycopg.errors.SerializationFailure("could not serialize access"), 409),
        (psycopg.OperationalError("connection refused"), 503),
    ],
)
def test_database_errors_map_to_problems(cause: Exception, status: int) -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/write")
    def write() -> None:
        raise OperationalError("UPDATE incident SET …", {}, cause)

    response = TestClient(app, raise_server_exceptions=False).get("/write")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status and response.json()["detail"]
