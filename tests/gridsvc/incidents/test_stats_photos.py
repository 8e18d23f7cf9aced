"""Statistics against an independent computation over the stored rows; photos checked by content."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gridsvc.models import IncidentPhoto
from tests.gridsvc.incidents.conftest import T0, IncidentStreet, act, report

TZ = ZoneInfo("Asia/Shanghai")
CATEGORIES = ["sanitation", "safety", "dispute", "municipal", "opinion"]


def _scenario(client: TestClient, s: IncidentStreet, n: int = 36) -> None:
    """n cases over two months in every cell, carried to random points of the workflow."""
    rng = random.Random(6)
    for _ in range(n):
        at = T0 + timedelta(days=rng.uniform(0, 55), hours=rng.uniform(0, 10))
        s.clock.set(at)
        cell = rng.choice(s.codes)
        case = report(client, s.headers["adm"], *s.centre(cell), category=rng.choice(CATEGORIES))
        assert case.status_code == 201, case.text
        cid = case.json()["id"]
        fate = rng.choice(["open", "dispatched", "closed", "closed", "closed", "parked"])
        if fate == "parked":
            act(client, s.headers["adm"], cid, "park", note="挂账")
            continue
        if fate == "open":
            continue
        s.clock.advance(minutes=rng.uniform(1, 90))
        act(client, s.headers["adm"], cid, "dispatch")
        if fate == "closed":
            for action in ("handle", "verify", "close"):
                s.clock.advance(hours=rng.uniform(1, 60))
                assert act(client, s.headers["adm"], cid, action).status_code == 200


def _expected(db: Session, now: Any, key: str, monthly: bool) -> dict[tuple[Any, Any], dict]:
    rows = db.execute(
        text(
            f"""SELECT {key} AS area, i.status, i.reported_at, i.dispatched_at, i.closed_at,
                       i.dispatch_due_at, i.close_due_at
                FROM incident i JOIN cell c ON c.id = i.cell_id
                JOIN community co ON co.id = i.community_id JOIN street st ON st.id = i.street_id"""
        )
    ).all()
    groups: dict[tuple[Any, Any], list[Any]] = defaultdict(list)
    for r in rows:
        local = r.reported_at.astimezone(TZ)
        period = local.date().replace(day=1).isoformat() if monthly else None
        groups[(r.area, period)].append(r)
    out = {}
    for k, rs in groups.items():
        closed = [r for r in rs if r.status == "closed"]
        on_time = [r for r in closed if r.closed_at <= r.close_due_at]
        open_ = [r for r in rs if r.status not in ("closed", "parked")]
        dispatched = [r for r in rs if r.dispatched_at is not None]
        out[k] = {
            "reported": len(rs),
            "closed": len(closed),
            "closed_on_time": len(on_time),
            "parked": sum(r.status == "parked" for r in rs),
            "overdue_open": sum(
                (r.close_due_at < now)
                or (
                    r.status in ("filed", "escalated")
                    and r.dispatched_at is None
                    and r.dispatch_due_at < now
                )
                for r in open_
            ),
            "closure_rate": round(len(closed) / len(rs), 4),
            "on_time_closure_rate": round(len(on_time) / len(closed), 4) if closed else None,
            "avg_minutes_to_dispatch": round(
                sum((r.dispatched_at - r.reported_at).total_seconds() for r in dispatched)
                / len(dispatched)
                / 60,
                2,
            )
            if dispatched
            else None,
            "avg_hours_to_close": round(
                sum((r.closed_at - r.reported_at).total_seconds() for r in closed)
                / len(closed)
                / 3600,
                2,
            )
            if closed
            else None,
        }
    return out


def test_stats_match_an_independent_computation(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    _scenario(client, s)
    now = T0 + timedelta(days=60)
    s.clock.set(now)
    for by, key, period in (
        ("cell", "c.code", "month"),
        ("community", "co.code", "month"),
        ("street", "st.code", "all"),
    ):
        r = client.get(f"/api/v1/incidents/stats?by={by}&period={period}", headers=s.headers["jd"])
        assert r.status_code == 200, r.text
        got = {(row[by], row["period"]): row for row in r.json()["rows"]}
        expected = _expected(db, now, key, period == "month")
        assert set(got) == set(expected)
        for k, exp in expected.items():
            for field, value in exp.items():
                assert got[k][field] == pytest.approx(value, abs=0.011), (by, k, field)
    # Some cases closed late and some on time: the two rates differ, as they should.
    street = client.get("/api/v1/incidents/stats?by=street&period=all", headers=s.headers["jd"])
    row = street.json()["rows"][0]
    assert row["closed"] > 0 and row["closure_rate"] < 1


def test_stats_scope_csv_and_bad_input(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    _scenario(client, s, n=12)
    mine = client.get("/api/v1/incidents/stats?by=street&period=all", headers=s.headers["gz"])
    assert mine.status_code == 200
    # A 格长 sees their own cell only, whatever grouping they ask for.
    assert {row["cell"] for row in mine.json()["rows"]} <= {s.codes[0]}
    own = db.scalar(
        text("SELECT count(*) FROM incident WHERE cell_id = :c"), {"c": s.cell_ids[s.codes[0]]}
    )
    assert sum(row["reported"] for row in mine.json()["rows"]) == own
    r = client.get("/api/v1/incidents/stats?by=cell&period=all&format=csv", headers=s.headers["jd"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert {row["cell"] for row in rows} == set(s.codes)
    assert sum(int(row["reported"]) for row in rows) == 12
    bad = client.get("/api/v1/incidents/stats?period=fortnight", headers=s.headers["jd"])
    assert bad.status_code == 422
    naive = client.get("/api/v1/incidents/stats?from=2026-01-01T00:00:00", headers=s.headers["jd"])
    assert naive.status_code == 422
    window = client.get(
        "/api/v1/incidents/stats?by=street&period=all&from=2026-03-01T00:00:00%2B08:00"
        "&to=2026-03-15T00:00:00%2B08:00",
        headers=s.headers["jd"],
    ).json()["rows"]
    expected = db.scalar(
        text(
            "SELECT count(*) FROM incident WHERE reported_at >= '2026-03-01T00:00:00+08:00' "
            "AND reported_at < '2026-03-15T00:00:00+08:00'"
        )
    )
    assert sum(row["reported"] for row in window) == expected


def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


def test_photos_checked_by_content(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    case = report(client, s.headers["gz"], *s.centre(s.codes[0])).json()["id"]
    url = f"/api/v1/incidents/{case}/photos"
    for fmt, media in (("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")):
        data = _image(fmt)
        # The name and declared type lie; the content decides.
        r = client.post(
            url, files={"file": ("photo.txt", data, "text/plain")}, headers=s.headers["gz"]
        )
        assert r.status_code == 201, r.text
        assert r.json()["media_type"] == media and (r.json()["width"], r.json()["height"]) == (
            64,
            48,
        )
        back = client.get(f"{url}/{r.json()['id']}", headers=s.headers["sq"])
        assert back.content == data and back.headers["content-type"] == media
    png = _image("PNG")
    bad = [
        b"<script>alert(1)</script>",  # named .png below, still not an image
        png[:40],  # a truncated PNG: right magic bytes, cannot be decoded
        b"GIF89a" + png[6:],
    ]
    for payload in bad:
        r = client.post(
            url, files={"file": ("x.png", payload, "image/png")}, headers=s.headers["gz"]
        )
        assert r.status_code == 422, r.text
    assert db.scalar(select(func.count()).where(IncidentPhoto.incident_id == case)) == 3
    # Outside the scope: not found; viewers may look but not add.
    other = client.post(url, files={"file": ("a.png", png, "image/png")}, headers=s.headers["gz2"])
    assert other.status_code == 404
    viewer = client.post(url, files={"file": ("a.png", png, "image/png")}, headers=s.headers["ro"])
    assert viewer.status_code == 403
    # A small file that would decode into a huge image is refused before decoding.
    buf = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buf, format="PNG")
    r = client.post(
        url, files={"file": ("b.png", buf.getvalue(), "image/png")}, headers=s.headers["gz"]
    )
    assert r.status_code == 422 and "pixels" in r.json()["detail"]
    listed = client.get(f"/api/v1/incidents/{case}", headers=s.headers["ro"]).json()["photos"]
    assert len(listed) == 3 and all(len(p["sha256"]) == 64 for p in listed)


def test_photo_too_large(
    client: TestClient, incident_street: IncidentStreet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridsvc.settings import get_settings

    s = incident_street
    case = report(client, s.headers["gz"], *s.centre(s.codes[0])).json()["id"]
    monkeypatch.setenv("GRIDSVC_INCIDENT_PHOTO_MAX_BYTES", "1000")
    get_settings.cache_clear()
    try:
        buf = io.BytesIO()
        Image.effect_noise((300, 300), 80).convert("RGB").save(buf, format="PNG")
        assert len(buf.getvalue()) > 1000
        r = client.post(
            f"/api/v1/incidents/{case}/photos",
            files={"file": ("a.png", buf.getvalue(), "image/png")},
            headers=s.headers["gz"],
        )
        assert r.status_code == 413 and r.json()["status"] == 413
    finally:
        monkeypatch.delenv("GRIDSVC_INCIDENT_PHOTO_MAX_BYTES")
        get_settings.cache_clear()
