"""Water reaches proposals through the database (issue 19, item 3): `import water`, then
`cells propose` keeps every cell on one bank; OSM rail and ferry tags reach the partition."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.readers import read_features
from gridsvc.errors import InvalidInput
from gridsvc.models import Community, Water
from gridsvc.repositories.areas import get_community
from gridsvc.repositories.bulk import to_db_geometry
from gridsvc.services.imports import ensure_street, import_buildings, import_roads
from gridsvc.services.proposals import propose_for_community
from gridsvc.services.water import import_water
from gridsvc.settings import get_settings
from tests.geodata.test_partition_water import box_m, river_town

COMMUNITY = "320102777001"


def _write(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    gdf.assign(id=[f"f{k}" for k in range(len(gdf))]).to_file(path, driver="GeoJSON")
    return path


def test_import_water_keeps_the_water_of_an_osm_file(db: Session, nanjing: Path) -> None:
    raw = read_features(nanjing / "raw" / "osm_bbox.osm.xml", kind="polygon")
    summary = import_water(db, raw, source="nj-water")
    assert summary.inserted == 5  # 1 river (water=river) and 4 ponds tagged natural=water
    assert db.scalar(select(func.count()).select_from(Water)) == 5
    names = set(db.scalars(select(Water.name)).all())
    assert "碧池" in names
    # buildings are not water: a file without water tags is refused unless declared all water
    buildings = read_features(nanjing / "buildings.geojson", kind="polygon")
    with pytest.raises(InvalidInput, match="no water tags"):
        import_water(db, buildings, source="nj-buildings")
    assert db.scalar(select(func.count()).select_from(Water)) == 5
    areas = read_features(nanjing / "areas.geojson", kind="polygon")  # landuse, no water
    with pytest.raises(InvalidInput, match="no water polygons"):
        import_water(db, areas, source="nj-areas")
    assert db.scalar(select(func.count()).select_from(Water)) == 5


def test_a_proposal_from_the_database_keeps_each_cell_on_one_bank(
    db: Session, tmp_path: Path
) -> None:
    buildings, roads, water = river_town(450, 150)
    area = box_m(-10, 0, 530, 300)
    street_id = ensure_street(db, street_code="320102777", street_name="河畔街道")
    db.add(
        Community(code=COMMUNITY, name="河畔社区", street_id=street_id, geom=to_db_geometry(area))
    )
    db.flush()
    geo = get_settings().geo
    import_buildings(
        db, read_features(_write(buildings, tmp_path / "b.geojson")), source="river", geo=geo
    )
    import_roads(
        db, read_features(_write(roads, tmp_path / "r.geojson"), kind="line"), source="river"
    )
    community = get_community(db, COMMUNITY)

    def banks_per_cell() -> list[int]:
        proposal = propose_for_community(db, community, target=300, band=(200, 500))
        cells = [shapely.geometry.shape(f["geometry"]) for f in proposal["features"]]
        west = buildings[buildings["bank"] == "west"].geometry.to_numpy()
        east = buildings[buildings["bank"] == "east"].geometry.to_numpy()
        return [
            int(shapely.intersects(cell, west).any()) + int(shapely.intersects(cell, east).any())
            for cell in cells
        ]

    assert max(banks_per_cell()) == 2  # without the water a cell holds both banks
    river = water[water["natural"] == "water"].drop(columns=["natural", "landuse"])
    layer = read_features(_write(river, tmp_path / "w.geojson"))  # a layer drawn as water
    import_water(db, layer, source="river", all_water=True)
    assert max(banks_per_cell()) == 1
