"""Imports of areas, estates, buildings and cells from files already read by ``geodata``.

Each function writes inside the caller's transaction and returns an :class:`ImportSummary`;
the caller commits (``--commit``) or rolls back (the default dry run), so a dry run reports
exactly what a commit would do, and a failure anywhere leaves nothing half-written.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geodata.estimate import estimate_households, parse_levels
from geodata.limits import InputLimits
from geodata.readers import ReadResult
from gridsvc.db.transactions import savepoint
from gridsvc.domain import CELL_KINDS, MAX_ADDRESS, MAX_CODE, MAX_NAME, MAX_TEXT
from gridsvc.errors import Conflict, InvalidInput, NotFound
from gridsvc.models import Cell, Community, District, Street
from gridsvc.repositories.areas import CommunityRef, get_community
from gridsvc.repositories.bulk import copy_rows, ewkb_hex, to_db_geometry, upsert_rows
from gridsvc.repositories.cells import next_cell_codes, next_codes
from gridsvc.services.assignment import assign_buildings_to_areas, assign_buildings_to_cells
from gridsvc.services.clock import local_zone
from gridsvc.settings import GeoSettings

log = logging.getLogger(__name__)

#: Column names recognised in input files, first match wins (English, OSM and Chinese headers).
NAME_COLUMNS = ("name", "名称", "name:zh", "NAME", "Name")
CODE_COLUMNS = ("code", "编码", "编号", "CODE", "Code")
KIND_COLUMNS = ("building", "kind", "type", "类型")
LEVEL_COLUMNS = ("building:levels", "levels", "层数", "floors")
UNIT_COLUMNS = ("units", "单元数")
HOUSEHOLD_COLUMNS = ("households", "户数")
ADDRESS_COLUMNS = ("address", "地址", "addr:full")

Progress = Callable[[int], None]


@dataclass
class ImportSummary:
    """What an import did (or, in a dry run, would do)."""

    kind: str
    source: str
    features_read: int = 0
    repaired: list[Any] = field(default_factory=list)
    rejected: list[Any] = field(default_factory=list)
    inserted: int = 0
    updated: int = 0
    estimated_households: int = 0
    households_total: int = 0
    assigned_to_cells: int = 0
    not_in_any_cell: int = 0
    outside_communities: int = 0
    codes: list[str] = field(default_factory=list)
    committed: bool = False

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs for the CLI's summary table."""
        out = [
            ("features read", str(self.features_read)),
            ("repaired geometries", str(len(self.repaired))),
            ("rejected features", str(len(self.rejected))),
            ("inserted", str(self.inserted)),
            ("updated (already present)", str(self.updated)),
        ]
        if self.kind == "buildings":
            out += [
                ("households (total)", str(self.households_total)),
                ("buildings with estimated households", str(self.estimated_households)),
                ("buildings assigned to a cell", str(self.assigned_to_cells)),
                ("buildings in no cell", str(self.not_in_any_cell)),
                ("buildings outside every community", str(self.outside_communities)),
            ]
        if self.kind == "incidents":
            out.append(("incidents placed in a cell", str(self.assigned_to_cells)))
        if self.kind == "cells":
            out.append(
                ("cell codes", ", ".join(self.codes[:10]) + (" …" if len(self.codes) > 10 else ""))
            )
        out.append(("written", "yes (committed)" if self.committed else "no (dry run)"))
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the API."""
        data = {k: v for k, v in self.__dict__.items() if k not in ("repaired", "rejected")}
        data["repaired"] = [note.__dict__ for note in self.repaired]
        data["rejected"] = [note.__dict__ for note in self.rejected]
        return data


def run_in_savepoint(
    session: Session, work: Callable[[], ImportSummary], *, commit: bool
) -> ImportSummary:
    """Run an import inside a SAVEPOINT: committed with `commit`, else rolled back (dry run).

    Only the import's own writes are undone by a dry run or a failure; nothing is half-written.
    """
    from gridsvc.services import audit

    # Imports are logged once, as a summary, rather than row by row.
    with audit.bulk(session), savepoint(session, keep=commit):
        summary = work()
    summary.committed = commit
    if commit:
        audit.record(
            session,
            f"import.{summary.kind}",
            summary.kind,
            after={
                "source": summary.source,
                "features_read": summary.features_read,
                "inserted": summary.inserted,
                "updated": summary.updated,
                "repaired": len(summary.repaired),
                "rejected": len(summary.rejected),
                "codes": summary.codes[:200],
            },
        )
    return summary


def _first_column(gdf: pd.DataFrame, names: Iterable[str]) -> pd.Series | None:
    for name in names:
        if name in gdf.columns:
            return gdf[name]
    return None


def _text(series: pd.Series | None, n: int) -> list[str | None]:
    if series is None:
        return [None] * n
    out: list[str | None] = []
    for value in series.tolist():
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            out.append(None)
        else:
            text_value = str(value).strip()
            out.append(text_value or None)
    return out


def _ints(series: pd.Series | None, n: int) -> list[int | None]:
    if series is None:
        return [None] * n
    numbers = pd.to_numeric(series, errors="coerce")
    return [None if pd.isna(v) else int(v) for v in numbers.tolist()]


def _addresses(gdf: pd.DataFrame) -> list[str | None]:
    n = len(gdf)
    explicit = _text(_first_column(gdf, ADDRESS_COLUMNS), n)
    street = _text(gdf.get("addr:street"), n)
    number = _text(gdf.get("addr:housenumber"), n)
    return [
        e or ("".join(p for p in (s, h) if p) or None)
        for e, s, h in zip(explicit, street, number, strict=True)
    ]


def _extra_properties(gdf: pd.DataFrame, used: set[str]) -> list[str]:
    """The attributes not mapped to columns, as one JSON object per row (nulls left out)."""
    extra = gdf.drop(columns=[c for c in gdf.columns if c in used or c == "geometry"])
    extra = extra.dropna(axis=1, how="all")  # OSM extracts carry many empty tag columns
    names = list(extra.columns)
    values = extra.to_numpy(dtype=object)
    present = extra.notna().to_numpy()
    return [
        json.dumps(
            {names[j]: _plain(values[i, j]) for j in np.flatnonzero(present[i])},
            ensure_ascii=False,
            default=str,
        )
        for i in range(len(extra))
    ]


def _plain(value: Any) -> Any:
    """numpy scalars → Python values for JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _text_limit(column: str) -> int:
    """The longest text accepted in a column of an import file (the API's limits)."""
    if column in NAME_COLUMNS:
        return MAX_NAME
    if column in (*CODE_COLUMNS, *KIND_COLUMNS, *CATEGORY_COLUMNS, *REPORTER_COLUMNS):
        return MAX_CODE
    if column in ADDRESS_COLUMNS:
        return MAX_ADDRESS
    return MAX_TEXT  # descriptions and the attributes kept as properties


def check_text_lengths(gdf: pd.DataFrame) -> None:
    """Refuse a file whose text attribute is longer than its kind allows, naming the feature
    (its source id: the row number of a spreadsheet without an id column) and the column."""
    for column in gdf.columns:
        values = gdf[column]
        if column == "geometry" or not (
            pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)
        ):
            continue
        lengths = values.map(lambda v: len(v) if isinstance(v, str) else 0)
        limit = MAX_CODE if column == "source_id" else _text_limit(str(column))
        if len(lengths) and (longest := int(lengths.max())) > limit:
            i = int(np.argmax(lengths.to_numpy()))
            where = (
                "a feature" if column == "source_id" else f"feature {gdf['source_id'].iloc[i]!r}"
            )
            raise InvalidInput(
                f"{where}: {column} is {longest} characters long; the limit is {limit}"
            )


def _start_summary(kind: str, source: str, result: ReadResult) -> ImportSummary:
    check_text_lengths(result.gdf)
    return ImportSummary(
        kind=kind,
        source=source,
        features_read=result.feature_count_read,
        repaired=list(result.notes),
        rejected=list(result.rejected),
    )


# -- buildings ---------------------------------------------------------------------------------
_BUILDING_COLUMNS = (
    "source",
    "source_id",
    "name",
    "address",
    "kind",
    "levels",
    "units",
    "households",
    "households_estimated",
    "footprint",
    "properties",
)


def import_buildings(
    session: Session,
    result: ReadResult,
    *,
    source: str,
    geo: GeoSettings,
    progress: Progress | None = None,
) -> ImportSummary:
    """Insert or update buildings (keyed by source + source id), then assign them.

    Buildings with no household count get an estimate (residential only), marked estimated.
    """
    summary = _start_summary("buildings", source, result)
    gdf = result.gdf
    n = len(gdf)
    if n == 0:
        return summary
    households, estimated = estimate_households(
        gdf, dwelling_area_m2=geo.dwelling_area_m2, default_levels=geo.default_levels
    )
    levels_source = _first_column(gdf, LEVEL_COLUMNS)
    levels = (
        [None if pd.isna(v) else int(v) for v in parse_levels(levels_source).tolist()]
        if levels_source is not None
        else [None] * n
    )
    used = {"source_id", *NAME_COLUMNS, *KIND_COLUMNS, *LEVEL_COLUMNS, *UNIT_COLUMNS}
    used |= {*HOUSEHOLD_COLUMNS, *ADDRESS_COLUMNS, "addr:street", "addr:housenumber"}
    columns = {
        "source": [source] * n,
        "source_id": _text(gdf["source_id"], n),
        "name": _text(_first_column(gdf, NAME_COLUMNS), n),
        "address": _addresses(gdf),
        "kind": _text(_first_column(gdf, KIND_COLUMNS), n),
        "levels": [v if v is None or 0 < v < 200 else None for v in levels],
        "units": _ints(_first_column(gdf, UNIT_COLUMNS), n),
        "households": [int(v) for v in households.fillna(0).tolist()],
        "households_estimated": [bool(v) for v in estimated.tolist()],
        "footprint": ewkb_hex(gdf.geometry.values),
        "properties": _extra_properties(gdf, used),
    }
    duplicates = pd.Series(columns["source_id"]).duplicated()
    if duplicates.any():
        dup = pd.Series(columns["source_id"])[duplicates].iloc[0]
        raise InvalidInput(
            f"the file has two features with the same id {dup!r}; ids must be unique"
        )
    summary.households_total = int(sum(columns["households"]))
    summary.estimated_households = int(sum(columns["households_estimated"]))

    rows = zip(*(columns[c] for c in _BUILDING_COLUMNS), strict=True)
    summary.inserted, summary.updated = upsert_rows(
        session, "building", _BUILDING_COLUMNS, _report(rows, progress)
    )

    envelope = shapely.box(*gdf.total_bounds).wkt
    assign_buildings_to_areas(session, envelope_wkt=envelope)
    assign_buildings_to_cells(session, envelope_wkt=envelope)
    counts = session.execute(
        text(
            "SELECT count(*) FILTER (WHERE cell_id IS NOT NULL) AS in_cell, "
            "count(*) FILTER (WHERE cell_id IS NULL) AS no_cell, "
            "count(*) FILTER (WHERE community_id IS NULL) AS no_community "
            "FROM building WHERE source = :source"
        ),
        {"source": source},
    ).one()
    summary.assigned_to_cells = int(counts.in_cell)
    summary.not_in_any_cell = int(counts.no_cell)
    summary.outside_communities = int(counts.no_community)
    return summary


def _report(rows: Iterable[Any], progress: Progress | None, every: int = 1000) -> Iterable[Any]:
    if progress is None:
        yield from rows
        return
    pending = 0
    for row in rows:
        yield row
        pending += 1
        if pending == every:
            progress(pending)
            pending = 0
    if pending:
        progress(pending)


# -- estates -----------------------------------------------------------------------------------
def import_estates(session: Session, result: ReadResult, *, source: str) -> ImportSummary:
    """Insert estates (小区) and attach buildings and communities to them."""
    summary = _start_summary("estates", source, result)
    gdf = result.gdf
    n = len(gdf)
    rows = zip(
        _text(_first_column(gdf, NAME_COLUMNS), n),
        [source] * n,
        _text(gdf["source_id"], n),
        ewkb_hex(gdf.geometry.values),
        strict=True,
    )
    summary.inserted = copy_rows(session, "estate", ("name", "source", "source_id", "geom"), rows)
    assign_buildings_to_areas(session, envelope_wkt=shapely.box(*gdf.total_bounds).wkt)
    return summary


# -- districts, streets, communities ------------------------------------------------------------
def ensure_street(
    session: Session,
    *,
    street_code: str,
    street_name: str | None = None,
    district_code: str | None = None,
    district_name: str | None = None,
) -> int:
    """The id of the street with this code, created (with its district) when names are given."""
    street_id = session.scalar(select(Street.id).where(Street.code == street_code))
    if street_id is not None:
        return street_id
    if not street_name:
        raise NotFound(
            f"no street with code {street_code!r}; give --street-name (and --district) to create it"
        )
    district_code = district_code or street_code[:6]
    district_id = session.scalar(select(District.id).where(District.code == district_code))
    if district_id is None:
        district = District(code=district_code, name=district_name or district_code)
        session.add(district)
        session.flush()
        district_id = district.id
    street = Street(code=street_code, name=street_name, district_id=district_id)
    session.add(street)
    session.flush()
    return street.id


def import_communities(
    session: Session, result: ReadResult, *, street_id: int, street_code: str, source: str
) -> ImportSummary:
    """Insert communities of a street; codes from the file or street code + sequence."""
    summary = _start_summary("communities", source, result)
    gdf = result.gdf
    n = len(gdf)
    names = _text(_first_column(gdf, NAME_COLUMNS), n)
    codes = _text(_first_column(gdf, CODE_COLUMNS), n)
    missing = [i for i, c in enumerate(codes) if c is None]
    if missing:
        geoms = np.asarray(gdf.geometry.values, dtype=object)[missing]
        for idx, code in zip(
            missing, next_codes(session, Community.code, street_code, geoms), strict=True
        ):
            codes[idx] = code
    _refuse_existing_codes(session, Community.code, codes, "community")
    for code, name, geom in zip(codes, names, gdf.geometry.values, strict=True):
        session.add(
            Community(code=code, name=name or code, street_id=street_id, geom=to_db_geometry(geom))
        )
    session.flush()
    summary.inserted = n
    summary.codes = [c for c in codes if c]
    assign_buildings_to_areas(session, envelope_wkt=shapely.box(*gdf.total_bounds).wkt)
    return summary


def _refuse_existing_codes(
    session: Session, column: Any, codes: list[str | None], what: str
) -> None:
    clash = session.scalars(select(column).where(column.in_([c for c in codes if c]))).all()
    if clash:
        raise Conflict(f"{what} code(s) already exist: {', '.join(sorted(clash)[:10])}")
    seen = pd.Series(codes).duplicated()
    if seen.any():
        raise InvalidInput(f"the file repeats the {what} code {pd.Series(codes)[seen].iloc[0]!r}")


# -- cells -------------------------------------------------------------------------------------
#: How far (in degrees, ≈1 m) a cell may poke outside its community.
_CONTAINMENT_TOLERANCE_DEG = 1e-5


def create_cells(
    session: Session,
    gdf: gpd.GeoDataFrame,
    *,
    community: CommunityRef | None = None,
    kind: str = "general",
    level: int = 4,
    reason: str = "imported",
    changed_by: str | None = None,
    summary: ImportSummary | None = None,
) -> ImportSummary:
    """Create cells (version 1) from polygons, give them codes, and assign buildings.

    Without `community`, each cell goes to the community holding its point on surface. Cells
    must lie inside their community (≈1 m tolerance); codes are the community code + a
    sequence in reading order (west→east, then north→south) unless the file gives codes.
    """
    summary = summary or ImportSummary(kind="cells", source="api", features_read=len(gdf))
    if kind not in CELL_KINDS:
        raise InvalidInput(f"unknown cell kind {kind!r}; use one of {', '.join(CELL_KINDS)}")
    n = len(gdf)
    if n == 0:
        raise InvalidInput("no cell polygons to create")
    geoms_hex = ewkb_hex(gdf.geometry.values)
    community_ids = _communities_for(session, geoms_hex, community)
    names = _text(_first_column(gdf, NAME_COLUMNS), n)
    codes = _text(_first_column(gdf, CODE_COLUMNS), n)
    communities = {
        cid: session.execute(
            select(Community.code, Community.name).where(Community.id == cid)
        ).one()
        for cid in set(community_ids)
    }
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    for cid, (_, cname) in communities.items():
        missing = [i for i in range(n) if community_ids[i] == cid and codes[i] is None]
        if not missing:
            continue
        for idx, code in zip(missing, next_cell_codes(session, cid, geoms[missing]), strict=True):
            codes[idx] = code
            names[idx] = names[idx] or f"{cname}第{code[-3:]}网格"
    _refuse_existing_codes(session, Cell.code, codes, "cell")
    cells = [
        Cell(
            code=codes[i],
            name=names[i] or codes[i],
            kind=kind,
            level=level,
            community_id=community_ids[i],
        )
        for i in range(n)
    ]
    session.add_all(cells)
    session.flush()
    copy_rows(
        session,
        "cell_version",
        ("cell_id", "version", "geom", "reason", "changed_by"),
        ((cell.id, 1, geoms_hex[i], reason, changed_by) for i, cell in enumerate(cells)),
    )
    summary.inserted = n
    summary.codes = [c for c in codes if c]
    for cid in communities:
        assign_buildings_to_cells(session, community_id=cid)
    return summary


def create_cells_from_geojson(
    session: Session,
    collection: dict[str, Any],
    *,
    community: CommunityRef,
    kind: str,
    datum: str,
    user: str,
    max_features: int,
    limits: InputLimits | None = None,
) -> ImportSummary:
    """Create and commit cells from a GeoJSON FeatureCollection (API payload).

    Coordinates in GCJ-02/BD-09 are converted; invalid polygons are repaired and reported; a
    feature with no usable polygon refuses the whole request.
    """
    from geodata.china import convert_geometries
    from geodata.geojson import features_to_gdf
    from geodata.validate import repair_geometries

    gdf = features_to_gdf(collection, max_features=max_features, limits=limits)
    gdf = gdf.set_geometry(convert_geometries(gdf.geometry, datum))
    gdf, notes = repair_geometries(gdf, "polygon")
    rejected = [n for n in notes if n.action == "rejected"]
    if rejected:
        reasons = "; ".join(f"feature {n.index}: {n.reason}" for n in rejected[:5])
        raise InvalidInput(f"{len(rejected)} feature(s) have no usable polygon: {reasons}")
    summary = create_cells(
        session,
        gdf,
        community=community,
        kind=kind,
        reason="created through the API",
        changed_by=user,
    )
    summary.repaired = [n for n in notes if n.action == "repaired"]
    session.commit()
    summary.committed = True
    return summary


def _communities_for(
    session: Session, geoms_hex: list[str], community: CommunityRef | None
) -> list[int]:
    """The community of each cell, checking that every cell lies inside it."""
    rows = session.execute(
        text(
            """
            WITH g AS (
                SELECT CAST(hex AS geometry) AS geom, ord
                FROM unnest(CAST(:geoms AS text[])) WITH ORDINALITY AS t(hex, ord)
            )
            SELECT g.ord, co.id,
                   ST_CoveredBy(g.geom, ST_Buffer(co.geom, :tol)) AS inside
            FROM g
            LEFT JOIN LATERAL (
                SELECT id, geom FROM community
                WHERE (CAST(:community_id AS integer) IS NULL
                       AND ST_Intersects(geom, ST_PointOnSurface(g.geom)))
                   OR id = :community_id
                LIMIT 1
            ) co ON true
            ORDER BY g.ord
            """
        ),
        {
            "geoms": geoms_hex,
            "tol": _CONTAINMENT_TOLERANCE_DEG,
            "community_id": community.id if community else None,
        },
    ).all()
    homeless = [int(r.ord) for r in rows if r.id is None]
    if homeless:
        raise InvalidInput(
            f"{len(homeless)} cell(s) lie in no community (features {homeless[:10]}); "
            "import the communities first or name one with --community"
        )
    outside = [int(r.ord) for r in rows if not r.inside]
    if outside:
        raise InvalidInput(
            f"{len(outside)} cell(s) extend outside their community (features {outside[:10]}); "
            "cells must stay inside the community they tile"
        )
    return [int(r.id) for r in rows]


def import_cells(
    session: Session,
    result: ReadResult,
    *,
    source: str,
    community_code: str | None = None,
    kind: str = "general",
    changed_by: str | None = None,
) -> ImportSummary:
    """Create cells from a file (see :func:`create_cells`)."""
    summary = _start_summary("cells", source, result)
    community = get_community(session, community_code) if community_code else None
    return create_cells(
        session,
        result.gdf,
        community=community,
        kind=kind,
        reason=f"imported from {source}",
        changed_by=changed_by,
        summary=summary,
    )


# -- incidents -----------------------------------------------------------------------------------
CATEGORY_COLUMNS = ("category", "类别", "分类", "事件类型", "事件类别")
DESCRIPTION_COLUMNS = ("description", "描述", "内容", "事件描述")
REPORTED_COLUMNS = ("reported_at", "上报时间", "时间", "发生时间")
REPORTER_COLUMNS = ("reporter_kind", "上报人类型", "来源")


def _codes_from_labels(
    values: list[str | None],
    labels: dict[str, str],
    what: str,
    ids: list[str | None],
    default: str,
) -> list[str]:
    """Map codes or Chinese labels to codes; an unknown value names its row and the choices."""
    by_label = {label: code for code, label in labels.items()}
    out = []
    for value, row in zip(values, ids, strict=True):
        if value is None:
            out.append(default)
        elif value in labels:
            out.append(value)
        elif value in by_label:
            out.append(by_label[value])
        else:
            choices = "、".join(labels.values())
            raise InvalidInput(f"row {row}: unknown {what} {value!r}; use one of {choices}")
    return out


def import_incidents(session: Session, result: ReadResult, *, source: str) -> ImportSummary:
    """Insert incidents (points) and attribute each to the cell version valid at its report time.

    Columns (English or Chinese headers): category/类别 (code or label, e.g. 环境卫生),
    description/描述, reported_at/上报时间 (local time when no zone; default now),
    reporter_kind/上报人类型, address/地址.
    """
    from gridsvc.domain import REPORTER_KINDS
    from gridsvc.models import IncidentCategory

    summary = _start_summary("incidents", source, result)
    gdf = result.gdf
    n = len(gdf)
    ids = _text(gdf["source_id"], n)
    # Categories are data: whatever the incident_category table holds (codes or labels).
    known = dict(session.execute(select(IncidentCategory.code, IncidentCategory.label)).all())
    categories = _codes_from_labels(
        _text(_first_column(gdf, CATEGORY_COLUMNS), n),
        known,
        "category",
        ids,
        "other",
    )
    reporters = _codes_from_labels(
        _text(_first_column(gdf, REPORTER_COLUMNS), n),
        REPORTER_KINDS,
        "reporter",
        ids,
        "resident",
    )
    raw_times = _first_column(gdf, REPORTED_COLUMNS)
    now = pd.Timestamp.now(tz=local_zone())
    if raw_times is None:
        times = [now] * n
    else:
        parsed = pd.to_datetime(raw_times.astype("string"), errors="coerce", format="mixed")
        bad = parsed.isna() & raw_times.notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InvalidInput(f"row {ids[i]}: {raw_times.iloc[i]!r} is not a date and time")
        if parsed.dt.tz is None:
            parsed = parsed.dt.tz_localize(local_zone())
        times = [now if pd.isna(t) else t for t in parsed]
        future = [i for i, t in enumerate(times) if t > now + pd.Timedelta(minutes=5)]
        if future:
            raise InvalidInput(f"row {ids[future[0]]}: the report time lies in the future")
    points = ewkb_hex(gdf.geometry.values)
    summary.inserted = copy_rows(
        session,
        "incident",
        ("location", "category", "description", "reporter_kind", "reported_at", "address"),
        zip(
            points,
            categories,
            _text(_first_column(gdf, DESCRIPTION_COLUMNS), n),
            reporters,
            [t.isoformat() for t in times],
            _text(_first_column(gdf, ADDRESS_COLUMNS), n),
            strict=True,
        ),
    )
    from gridsvc.services.assignment import attribute_incidents

    summary.assigned_to_cells = attribute_incidents(session)
    return summary


# -- roads -------------------------------------------------------------------------------------
def import_roads(session: Session, result: ReadResult, *, source: str) -> ImportSummary:
    """Insert or update road centre lines (OSM highway), keyed by source + source id."""
    summary = _start_summary("roads", source, result)
    gdf = result.gdf
    n = len(gdf)
    columns = ("source", "source_id", "name", "highway", "geom", "properties")
    summary.inserted, summary.updated = upsert_rows(
        session,
        "road",
        columns,
        zip(
            [source] * n,
            _text(gdf["source_id"], n),
            _text(_first_column(gdf, NAME_COLUMNS), n),
            _text(gdf.get("highway"), n),
            ewkb_hex(gdf.geometry.values),
            _extra_properties(gdf, {"source_id", "highway", *NAME_COLUMNS}),
            strict=True,
        ),
    )
    return summary
