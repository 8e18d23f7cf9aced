"""A committed proposal keeps the topology it previewed (issue 19, item 5), on real Nanjing data.

Propose → preview → commit through the API, then read the committed cells back from PostGIS:
they are the previewed geometries vertex for vertex, neighbours share their edges with
coinciding vertices (a valid coverage), and validation finds no gap or overlap above the
``coverage_tolerance_m2`` setting (0.01 m²).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from geodata.readers import read_features
from gridsvc.repositories.areas import get_community
from gridsvc.repositories.cells import community_cells_frame
from gridsvc.services.imports import import_roads
from gridsvc.services.validation import validate_community
from gridsvc.settings import get_settings
from tests.gridsvc.test_redraw import (  # the 3 × 2 grid of Nanjing's core as one community
    COMMUNITY,
    RealCommunity,
    _commit,
    _preview,
    nanjing_cells,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.shared_data


def _vertices(geom: shapely.Geometry) -> set[tuple[float, float]]:
    return {(float(x), float(y)) for x, y in shapely.get_coordinates(geom)}


def test_committed_proposal_tiles_exactly_as_previewed(
    client: TestClient,
    db: Session,
    nanjing_cells: RealCommunity,  # noqa: F811
    nanjing: Path,
) -> None:
    rc = nanjing_cells
    import_roads(db, read_features(nanjing / "roads.geojson", kind="line"), source="nj-roads")
    r = client.post(
        f"/api/v1/communities/{COMMUNITY}/proposal",
        headers=rc.headers,
        json={"target": 300, "band_min": 200, "band_max": 500},
    )
    assert r.status_code == 200, r.text
    features = r.json()["features"]
    previewed = [shapely.geometry.shape(f["geometry"]) for f in features]
    assert shapely.coverage_is_valid(np.array(previewed, dtype=object))
    body = {
        "op": "proposal",
        "cells": {"type": "FeatureCollection", "features": features},
        "reason": "采用自动划格方案",
    }
    preview = _preview(client, rc, body)
    assert _commit(client, rc, body, preview["etag"]).status_code == 200

    ref = get_community(db, COMMUNITY)
    committed = community_cells_frame(db, ref.id)
    assert len(committed) == len(previewed)
    geoms = committed.geometry.to_numpy()
    # neighbours share their edges vertex for vertex: the committed set is a valid coverage
    assert shapely.coverage_is_valid(geoms)
    assert shapely.is_empty(shapely.coverage_invalid_edges(geoms)).all()
    # each committed cell is a previewed one, with the very same vertices
    wanted = {frozenset(_vertices(g)) for g in previewed}
    assert {frozenset(_vertices(g)) for g in geoms} == wanted
    # and validation (every gap or overlap above 0.01 m²) finds nothing between them
    assert get_settings().geo.coverage_tolerance_m2 == 0.01
    report = validate_community(db, ref)
    counts = report.counts()
    assert counts["gap"] == 0 and counts["overlap"] == 0 and counts["outside"] == 0, [
        p.detail for p in report.problems if p.kind in ("gap", "overlap", "outside")
    ]
    # re-proposing with keep_current sticks to the committed cells: nothing changed, nothing moves
    r = client.post(
        f"/api/v1/communities/{COMMUNITY}/proposal",
        headers=rc.headers,
        json={"target": 300, "band_min": 200, "band_max": 500, "seed": 7, "keep_current": True},
    )
    assert r.status_code == 200, r.text
    again = [shapely.geometry.shape(f["geometry"]) for f in r.json()["features"]]
    assert len(again) == len(previewed)
    assert all(any(a.equals(b) for b in geoms) for a in again)
