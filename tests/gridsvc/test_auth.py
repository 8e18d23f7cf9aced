"""Sign-in security against real PostGIS: CSRF from a neighbour on the same host, back-off per
(user name, address) instead of a lock anyone can trigger, tokens that can be revoked, and
X-Forwarded-For believed only from configured proxies (issue 12 items 4, 5, 8, 10)."""

# ruff: noqa: F811  (fixtures imported from other test modules)
from __future__ import annotations

import re
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import scratch_database
from tests.gridsvc.conftest import TEST_PASSWORD, SmallStreet, sign_in_form, token_for
from tests.gridsvc.test_api import users  # noqa: F401  (fixture)
from tests.gridsvc.test_cli import cli_db  # noqa: F401  (fixture)
from tests.gridsvc.test_roster import _counts, _csv, _rows

#: Another origin on the same host: the same *site*, so SameSite=Strict lets the cookie through.
NEIGHBOUR = "http://testserver:8001"
OWN = "http://testserver"


def _token(client: TestClient, username: str, password: str = TEST_PASSWORD) -> str:
    return token_for(client, username, password)["Authorization"].removeprefix("Bearer ")


def _page_csrf(client: TestClient) -> str:
    """The CSRF token our pages carry for the signed-in session."""
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/ui/").text)
    assert found
    return found[1]


def _import_roster(client: TestClient, path: Path, headers: dict[str, str] | None = None) -> object:
    with open(path, "rb") as fh:
        return client.post(
            "/api/v1/imports/roster",
            files={"file": (path.name, fh)},
            data={"commit": "true"},
            headers=headers or {},
        )


# -- item 4: CSRF ------------------------------------------------------------------------------
def test_cross_origin_write_with_the_cookie_is_refused_and_writes_nothing(
    client: TestClient, db: Session, users: SmallStreet, tmp_path: Path
) -> None:
    """A page on another port auto-submits a roster import with the staff cookie: refused."""
    assert sign_in_form(client, "street1").status_code == 303
    roster = _csv(tmp_path / "r.csv", _rows(users))
    before = _counts(db)
    for headers in ({"Origin": NEIGHBOUR}, {"Referer": NEIGHBOUR + "/attack.html"}, {}):
        refused = _import_roster(client, roster, headers)
        assert refused.status_code == 403, (headers, refused.text)  # type: ignore[attr-defined]
        body = refused.json()  # type: ignore[attr-defined]
        assert body["title"] == "Forbidden" and "cross-site request refused" in body["detail"]
        assert _counts(db) == before
    # "null" (a sandboxed frame, a data: URL) is not our origin either.
    assert _import_roster(client, roster, {"Origin": "null"}).status_code == 403  # type: ignore[attr-defined]
    assert _counts(db) == before


def test_same_origin_or_csrf_token_is_accepted_and_bearer_is_unaffected(
    client: TestClient, db: Session, users: SmallStreet, tmp_path: Path
) -> None:
    assert sign_in_form(client, "street1").status_code == 303
    roster = _csv(tmp_path / "r.csv", _rows(users))
    ours = _import_roster(client, roster, {"Origin": OWN})
    assert ours.status_code == 200 and ours.json()["committed"] is True  # type: ignore[attr-defined]
    # No Origin or Referer (some privacy proxies strip them), but the page's token: accepted.
    token = _page_csrf(client)
    with_token = _import_roster(client, roster, {"X-CSRF-Token": token})
    assert with_token.status_code == 200, with_token.text  # type: ignore[attr-defined]
    altered = token[:-1] + ("1" if token.endswith("0") else "0")  # surely not the token
    wrong = _import_roster(client, roster, {"X-CSRF-Token": altered})
    assert wrong.status_code == 403  # type: ignore[attr-defined]
    # A bearer-token client is not a browser riding a cookie: Origin does not matter.
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {_token(client, 'street1')}", "Origin": NEIGHBOUR}
    assert _import_roster(client, roster, bearer).status_code == 200  # type: ignore[attr-defined]


def test_a_configured_public_origin_is_accepted(
    client: TestClient, users: SmallStreet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a proxy the browser shows the public address, not the one uvicorn sees."""
    from gridsvc.settings import get_settings

    assert sign_in_form(client, "street1").status_code == 303
    public = "https://grid.example.gov.cn"
    body = {"title": "职责", "duties": "巡查"}
    assert client.put("/api/v1/duties/3", json=body, headers={"Origin": public}).status_code == 403
    monkeypatch.setattr(get_settings().auth, "public_origins", public + "/, https://other")
    ok = client.put("/api/v1/duties/3", json=body, headers={"Origin": public})
    assert ok.status_code == 200, ok.text


def test_login_csrf_is_refused(client: TestClient, users: SmallStreet) -> None:
    """Another page cannot sign the victim's browser in to the attacker's account."""
    data = {"username": "street1", "password": TEST_PASSWORD, "next": "/ui/"}
    forged = client.post("/ui/login", data=data, follow_redirects=False)
    assert forged.status_code == 403 and "登录页面已过期" in forged.text
    assert "gridsvc_session" not in client.cookies
    # Even with a planted cookie and matching field (cookies do not separate ports), a foreign
    # Origin is refused.
    page = client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]  # type: ignore[index]
    planted = client.post(
        "/ui/login",
        data={**data, "csrf_token": token},
        headers={"Origin": NEIGHBOUR},
        follow_redirects=False,
    )
    assert planted.status_code == 403 and "gridsvc_session" not in client.cookies
    assert sign_in_form(client, "street1").status_code == 303


def test_get_logout_does_not_sign_out_and_post_does(client: TestClient, users: SmallStreet) -> None:
    """An <img src=/ui/logout> elsewhere cannot sign anyone out; the page's button does, and
    the old cookie is dead even if replayed."""
    assert sign_in_form(client, "street1").status_code == 303
    cookie = client.cookies["gridsvc_session"]
    confirm = client.get("/ui/logout", follow_redirects=False)
    assert confirm.status_code == 200 and "确定要退出吗" in confirm.text
    assert client.get("/ui/", follow_redirects=False).status_code == 200
    # A forged POST from the neighbour is refused too.
    forged = client.post("/ui/logout", headers={"Origin": NEIGHBOUR}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/ui/", follow_redirects=False).status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', confirm.text)[1]  # type: ignore[index]
    out = client.post("/ui/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    client.cookies.set("gridsvc_session", cookie)  # replay the stolen cookie
    assert client.get("/ui/", follow_redirects=False).status_code == 303  # to the sign-in page
    assert client.get("/api/v1/me").status_code == 401


# -- item 5: back-off instead of a lock ---------------------------------------------------------
def _from(client: TestClient, address: str) -> TestClient:
    return TestClient(client.app, client=(address, 40000), raise_server_exceptions=False)


def _sign_in(client: TestClient, username: str, password: str) -> object:
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_wrong_passwords_from_one_address_do_not_lock_out_another(
    client: TestClient, users: SmallStreet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridsvc.settings import get_settings

    # A first wait far longer than a request, so a slow machine cannot outlast it.
    monkeypatch.setattr(get_settings().auth, "backoff_first_seconds", 30.0)
    attacker = _from(client, "198.51.100.7")
    answers = [_sign_in(attacker, "leader1", "nope-nope").status_code for _ in range(7)]  # type: ignore[attr-defined]
    assert answers[:3] == [401, 401, 401] and set(answers[3:]) == {429}
    blocked = _sign_in(attacker, "leader1", TEST_PASSWORD)  # even the right password waits
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1  # type: ignore[attr-defined]
    assert "try again in" in blocked.json()["detail"]  # type: ignore[attr-defined]
    owner = _from(client, "203.0.113.20")
    assert _sign_in(owner, "leader1", TEST_PASSWORD).status_code == 200  # type: ignore[attr-defined]
    page = sign_in_form(owner, "leader1")
    assert page.status_code == 303


def _time_passes(db: Session) -> None:
    """Every wait is over (as if its time had passed)."""
    db.execute(text("UPDATE sign_in_backoff SET blocked_until = now() - interval '1 s'"))


def test_back_off_grows_and_a_right_password_clears_it(
    client: TestClient, db: Session, users: SmallStreet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridsvc.settings import get_settings

    # A first wait far longer than a request, so a slow machine cannot outlast it.
    monkeypatch.setattr(get_settings().auth, "backoff_first_seconds", 30.0)
    guesser = _from(client, "198.51.100.8")
    waits = []
    for _ in range(3):
        assert _sign_in(guesser, "leader1", "nope-nope").status_code == 401  # type: ignore[attr-defined]
    for _ in range(4):
        refused = _sign_in(guesser, "leader1", "nope-nope")
        assert refused.status_code == 429  # type: ignore[attr-defined]
        waits.append(int(refused.headers["Retry-After"]))  # type: ignore[attr-defined]
        # Time passes (the wait is over): the next wrong password waits twice as long.
        _time_passes(db)
        assert _sign_in(guesser, "leader1", "nope-nope").status_code == 401  # type: ignore[attr-defined]
    assert [round(w / 30) for w in waits] == [1, 2, 4, 8]  # doubled each time
    page = _from(client, "198.51.100.8")
    form = sign_in_form(page, "leader1", "nope-nope")
    assert form.status_code == 429 and "秒后再试" in form.text and form.headers["Retry-After"]
    _time_passes(db)
    assert _sign_in(guesser, "leader1", TEST_PASSWORD).status_code == 200  # type: ignore[attr-defined]
    assert db.execute(text("SELECT count(*) FROM sign_in_backoff")).scalar_one() == 0


@pytest.mark.live
def test_the_sign_in_limit_holds_across_worker_processes(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two worker processes share one limit: each would allow the full limit on its own."""
    import httpx

    from gridsvc.testing import serve_in_subprocess

    monkeypatch.setenv("GRIDSVC_LOGIN_ATTEMPTS_PER_MINUTE", "5")
    with (
        scratch_database("gridsvc_sign_in_rate") as url,
        serve_in_subprocess(url, workers=2) as base,
    ):
        answers = []
        for i in range(16):  # a new connection each time, so both workers answer
            r = httpx.post(
                f"{base}/api/v1/auth/token",
                data={"username": f"guess{i}", "password": "wrong-one"},  # no back-off
            )
            answers.append((r.status_code, r.json()["detail"]))
    assert [status for status, _ in answers] == [401] * 5 + [429] * 11
    assert all("sign-in attempts in a minute" in detail for _, detail in answers[5:])


def test_back_off_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    from gridsvc.services.users import backoff_seconds

    assert [backoff_seconds(n) for n in range(1, 7)] == [0, 0, 1, 2, 4, 8]
    assert backoff_seconds(10_000) == 15 * 60


def test_unknown_user_and_wrong_password_answer_alike(
    client: TestClient, users: SmallStreet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither the answers (also once backing off) nor the work done tell which names exist."""
    import pwdlib

    from gridsvc.settings import get_settings

    # A first wait far longer than a request, so a slow machine cannot outlast it.
    monkeypatch.setattr(get_settings().auth, "backoff_first_seconds", 30.0)

    def answers(username: str, address: str) -> list[tuple[int, str]]:
        c = _from(client, address)

        def same_for_all(text: str) -> str:  # the address, and the wait to the second
            text = text.replace(address, "ADDR")
            return re.sub(r'(in |"retry_after":)\d+', r"\1N", text)

        return [
            (r.status_code, same_for_all(r.text))
            for r in (_sign_in(c, username, "nope-nope") for _ in range(6))
        ]

    assert answers("leader1", "192.0.2.1") == answers("no-such-user", "192.0.2.2")

    verified: list[str] = []
    real_verify = pwdlib.PasswordHash.verify

    def counting(self, password, hash, *args, **kwargs):  # type: ignore[no-untyped-def]
        verified.append(password)
        return real_verify(self, password, hash, *args, **kwargs)

    monkeypatch.setattr(pwdlib.PasswordHash, "verify", counting)
    timings: dict[str, list[float]] = {"leader1": [], "no-such-user": []}
    for n in range(5):
        for name, times in timings.items():
            c = _from(client, f"192.0.2.{10 + n}")
            start = time.perf_counter()
            assert _sign_in(c, name, "nope-nope").status_code == 401  # type: ignore[attr-defined]
            times.append(time.perf_counter() - start)
    assert len(verified) == 10  # one argon2 verification each, unknown names included
    known, unknown = (statistics.median(t) for t in timings.values())
    print(
        f"\nsign-in medians: wrong password {known * 1000:.0f} ms, unknown {unknown * 1000:.0f} ms"
    )
    assert 1 / 3 < unknown / known < 3, timings


def test_cli_unlock_clears_the_back_off(cli_db: str) -> None:
    from gridsvc.cli import app
    from gridsvc.main import create_app

    runner = CliRunner()
    made = runner.invoke(
        app, ["users", "create", "ops", "--role", "admin", "--password", "pw-12345678"]
    )
    assert made.exit_code == 0, made.output
    web = TestClient(create_app(), client=("198.51.100.9", 1), raise_server_exceptions=False)
    for _ in range(4):
        _sign_in(web, "ops", "wrong-pass")
    assert _sign_in(web, "ops", "pw-12345678").status_code == 429  # type: ignore[attr-defined]
    assert "unlock" in runner.invoke(app, ["users", "--help"]).output
    unlocked = runner.invoke(app, ["users", "unlock", "ops"])
    assert unlocked.exit_code == 0 and "1 address" in unlocked.output, unlocked.output
    assert _sign_in(web, "ops", "pw-12345678").status_code == 200  # type: ignore[attr-defined]


# -- item 8: revocable tokens -------------------------------------------------------------------
def _me(client: TestClient, token: str) -> int:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_api_logout_kills_every_token_of_the_user(
    client: TestClient, users: SmallStreet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also with the principal cache on: this process forgets the user at once."""
    from gridsvc.api import deps
    from gridsvc.settings import get_settings

    monkeypatch.setattr(get_settings().auth, "principal_cache_seconds", 5)
    deps._principal_cache.cache_clear()
    try:
        laptop, phone = _token(client, "street1"), _token(client, "street1")
        assert _me(client, laptop) == 200 and _me(client, phone) == 200
        out = client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {laptop}"})
        assert out.status_code == 204
        assert _me(client, laptop) == 401 and _me(client, phone) == 401
        assert (
            "revoked"
            in client.get("/api/v1/me", headers={"Authorization": f"Bearer {phone}"}).json()[
                "detail"
            ]
        )
        assert _me(client, _token(client, "street1")) == 200  # signing in again works
    finally:
        deps._principal_cache.cache_clear()


def test_password_change_disable_and_delete_kill_tokens(
    client: TestClient, db: Session, users: SmallStreet
) -> None:
    from gridsvc.services.users import change_password, delete_user, set_active

    token = _token(client, "comm1")
    change_password(db, "comm1", "another-pass-1")
    assert _me(client, token) == 401
    token = _token(client, "comm1", "another-pass-1")
    set_active(db, "comm1", False)
    assert _me(client, token) == 401
    set_active(db, "comm1", True)
    assert _me(client, token) == 401  # enabling again does not revive old tokens

    old = _token(client, "leader1")
    delete_user(db, "leader1")
    assert _me(client, old) == 401


def test_an_old_token_never_reaches_a_recreated_same_name_user(
    client: TestClient, db: Session, users: SmallStreet
) -> None:
    """A deleted 格长's token must not take on the scope of a new account of the same name."""
    from gridsvc.services.users import ScopeSpec, create_user

    old = _token(client, "leader1")
    db.execute(text("DELETE FROM app_user WHERE username = 'leader1'"))
    create_user(
        db,
        username="leader1",
        password=TEST_PASSWORD,
        role="community_staff",
        scope=ScopeSpec("community", users.community_code),
    )
    db.commit()
    assert _me(client, old) == 401
    communities = client.get("/api/v1/communities", headers={"Authorization": f"Bearer {old}"})
    assert communities.status_code == 401
    assert _me(client, _token(client, "leader1")) == 200


def test_cli_password_disable_delete_revoke(cli_db: str) -> None:
    from gridsvc.cli import app
    from gridsvc.main import create_app

    runner = CliRunner()
    web = TestClient(create_app(), raise_server_exceptions=False)
    assert (
        runner.invoke(
            app, ["users", "create", "ops", "--role", "admin", "--password", "pw-12345678"]
        ).exit_code
        == 0
    )
    token = _token(web, "ops", "pw-12345678")
    changed = runner.invoke(app, ["users", "password", "ops", "--password", "pw-87654321"])
    assert changed.exit_code == 0 and "signed out" in changed.output, changed.output
    assert _me(web, token) == 401
    token = _token(web, "ops", "pw-87654321")
    assert runner.invoke(app, ["users", "disable", "ops"]).exit_code == 0
    assert _me(web, token) == 401
    assert _sign_in(web, "ops", "pw-87654321").status_code == 401  # type: ignore[attr-defined]
    assert runner.invoke(app, ["users", "enable", "ops"]).exit_code == 0
    token = _token(web, "ops", "pw-87654321")
    deleted = runner.invoke(app, ["users", "delete", "ops"])
    assert deleted.exit_code == 0, deleted.output
    assert (
        runner.invoke(
            app, ["users", "create", "ops", "--role", "admin", "--password", "pw-12345678"]
        ).exit_code
        == 0
    )
    assert _me(web, token) == 401
    missing = runner.invoke(app, ["users", "delete", "nobody"])
    assert missing.exit_code == 1 and "no user named" in missing.output


# -- item 10: X-Forwarded-For only from configured proxies ---------------------------------------
async def _echo_client(scope, receive, send):  # type: ignore[no-untyped-def]
    """A bare ASGI app answering the client address uvicorn gives it."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["client"][0].encode()})


@pytest.fixture
def uvicorn_with_cli_options() -> Iterator[object]:
    """Run the echo app under real uvicorn with the options `gridsvc serve` passes."""
    import socket

    import uvicorn

    from gridsvc.cli import uvicorn_options

    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start() -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config = uvicorn.Config(_echo_client, lifespan="off", **uvicorn_options("127.0.0.1", port))
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(5)


@pytest.mark.live
def test_forwarded_for_is_ignored_unless_from_a_configured_proxy(
    uvicorn_with_cli_options,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    import httpx

    from gridsvc.settings import get_settings

    spoofed = {"X-Forwarded-For": "203.0.113.66"}
    base = uvicorn_with_cli_options()
    assert httpx.get(base, headers=spoofed).text == "127.0.0.1"  # no proxy configured
    monkeypatch.setenv("GRIDSVC_FORWARDED_ALLOW_IPS", "127.0.0.1")
    get_settings.cache_clear()
    try:
        behind_proxy = uvicorn_with_cli_options()
        assert httpx.get(behind_proxy, headers=spoofed).text == "203.0.113.66"
    finally:
        monkeypatch.delenv("GRIDSVC_FORWARDED_ALLOW_IPS")
        get_settings.cache_clear()


def test_a_revoked_token_is_trusted_elsewhere_for_seconds_at_most() -> None:
    """Other worker processes notice a revocation within the cache time: a few seconds."""
    from pydantic import ValidationError

    from gridsvc.settings import AuthSettings

    assert AuthSettings().principal_cache_seconds <= 3
    with pytest.raises(ValidationError):
        AuthSettings(principal_cache_seconds=30)
