"""Schemathesis fuzzes every operation of the OpenAPI document against a live server.

A scratch database holds the demo street; gridsvc serves it from a child process (routes
commit, so a rolled-back test session would not do). Generated requests go in turn as an admin,
the street's staff and a community's staff, so scope checks are exercised. No response may be
a 5xx, and every one must match the status codes, media types and body schemas the document
declares. Path parameters are real codes and ids some of the time, so requests reach rows and
not only the 404 branch.

Bounded for CI: schemathesis' coverage phase (boundary and invalid values of every parameter),
then ``GRIDSVC_FUZZ_EXAMPLES`` generated examples per operation (default 25), derandomized.
Nothing is excluded: every operation of the document is fuzzed.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import load_demo, scratch_database

FUZZ_DB = "gridsvc_fuzz"
ADMIN_PASSWORD = "fuzz-admin-password-123"
EXAMPLES = int(os.environ.get("GRIDSVC_FUZZ_EXAMPLES", "25"))

#: Requests sent and seconds spent per operation (printed at the end with -s).
CALLS: Counter[str] = Counter()
SECONDS: Counter[str] = Counter()

#: Which real values each path parameter may take, filled from the scratch database.
REAL: dict[str, list[Any]] = {}


def _real_values(database_url: str) -> dict[str, list[Any]]:
    """A few real codes and ids of every kind a path names."""
    from sqlalchemy import create_engine, text

    queries = {
        "street": "SELECT code FROM street ORDER BY code LIMIT 3",
        "community": "SELECT code FROM community ORDER BY code LIMIT 3",
        "cell": "SELECT code FROM cell ORDER BY code LIMIT 5",
        "category": "SELECT code FROM incident_category ORDER BY code LIMIT 5",
        "person_id": "SELECT id FROM person ORDER BY id LIMIT 5",
        "assignment_id": "SELECT id FROM role_assignment ORDER BY id LIMIT 5",
        "link_id": "SELECT id FROM linked_household ORDER BY id LIMIT 5",
        "post_id": "SELECT id FROM service_post ORDER BY id LIMIT 5",
        "incident_id": "SELECT id FROM incident ORDER BY id LIMIT 5",
        "photo_id": "SELECT id FROM incident_photo ORDER BY id LIMIT 5",
        "request_id": "SELECT id FROM incident ORDER BY id LIMIT 5",
    }
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            values = {k: list(conn.execute(text(q)).scalars()) for k, q in queries.items()}
    finally:
        engine.dispose()
    values["request_id"] = [str(v) for v in values["request_id"]]
    from gridsvc.ogc.collections import COLLECTIONS

    values["collection_id"] = list(COLLECTIONS)
    values["feature_id"] = [*values["cell"], *map(str, values["incident_id"])]
    return values


def _choices_for(path: str, name: str) -> list[Any]:
    """Real values that suit the parameter `name` of `path`."""
    if name == "code":
        if path.startswith("/api/v1/cells/"):
            return REAL["cell"]
        if path.startswith("/api/v1/communities/"):
            return REAL["community"]
        if path.startswith("/api/v1/streets/"):
            return REAL["street"]
        if path.startswith("/open311/"):
            return REAL["category"]
        return REAL["street"] + REAL["community"] + REAL["cell"]  # exports/{kind}/{code}
    return REAL.get(name, [])


@pytest.fixture(scope="module")
def fuzz_site(database_url: str) -> Iterator[dict[str, Any]]:
    """The demo street in a scratch database, served by gridsvc; yields URL and tokens."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from gridsvc.services.users import create_user
    from gridsvc.testing import serve_in_subprocess

    with scratch_database(FUZZ_DB) as url:
        demo_password = load_demo(url)
        engine = create_engine(url)
        with Session(engine) as session:
            create_user(session, username="fuzzadmin", password=ADMIN_PASSWORD, role="admin")
            session.commit()
        engine.dispose()
        REAL.update(_real_values(url))
        with serve_in_subprocess(url) as base:
            passwords = {
                "fuzzadmin": ADMIN_PASSWORD,
                "jiedao": demo_password,
                "shequ": demo_password,
            }
            tokens = {user: _sign_in(base, user, pw) for user, pw in passwords.items()}
            yield {"url": base, "tokens": tokens, "passwords": passwords}
        print(f"\nfuzz: {sum(CALLS.values())} requests to {len(CALLS)} operations")
        for label, seconds in SECONDS.most_common(12):
            print(f"  {seconds:6.1f} s  {CALLS[label]:4d} requests  {label}")


def _sign_in(base: str, user: str, password: str) -> str:
    response = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": user, "password": password}
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _document() -> dict[str, Any]:
    """The OpenAPI document exactly as the app serves it at /openapi.json."""
    from gridsvc.main import create_app

    return create_app().openapi()


schema = schemathesis.openapi.from_dict(_document())


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Mostly replace each path parameter by a real value of its kind (else keep the fuzz)."""
    path = context.operation.path
    strategies = {}
    for name, value in (path_parameters or {}).items():
        choices = _choices_for(path, name)
        strategies[name] = st.sampled_from([value, *choices]) if choices else st.just(value)
    return st.fixed_dictionaries(strategies)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api(case: Any, fuzz_site: dict[str, Any]) -> None:
    """No request from any user gets a 5xx, and every response is what the document says."""
    started = time.perf_counter()
    # Each case goes as the next user in turn: every operation is fuzzed as every user, at a
    # third of the cost of sending each case three times.
    users = list(fuzz_site["tokens"])
    user = users[sum(CALLS.values()) % len(users)]
    CALLS[case.operation.label] += 1
    try:
        case.call_and_validate(
            base_url=fuzz_site["url"],
            headers={"Authorization": f"Bearer {fuzz_site['tokens'][user]}"},
            checks=CHECKS,
            timeout=60,
        )
    finally:
        if case.operation.path == "/api/v1/auth/logout":  # it revoked the user's tokens
            tokens, passwords = fuzz_site["tokens"], fuzz_site["passwords"]
            tokens[user] = _sign_in(fuzz_site["url"], user, passwords[user])
    SECONDS[case.operation.label] += time.perf_counter() - started
