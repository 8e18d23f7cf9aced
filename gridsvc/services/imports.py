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
from geodata.schema import (
    AREA_ROLES,
    BUILDING_ROLES,
    ROLE_LABELS,
    Fields,
    household_basis_problem,
    resolve_fields,
    road_class_problem,
)
from gridsvc.auth.principal import Place
from gridsvc.db.transactions import savepoint
from gridsvc.domain import CELL_KINDS, MAX_ADDRESS, MAX_CODE, MAX_NAME, MAX_TEXT
from gridsvc.errors import Conflict, InvalidInput, NotFound
from gridsvc.models import Cell, Community, District, Street
from gridsvc.repositories.areas import CommunityRef, get_community
from gridsvc.repositories.bulk import copy_rows, ewkb_hex, to_db_geometry, upsert_rows
from gridsvc.repositories.cells import next_cell_codes, next_codes
from gridsvc.services import moves
from gridsvc.services.assignment import assign_buildings_to_areas, assign_buildings_to_cells
from gridsvc.services.clock import local_zone
from gridsvc.settings import GeoSettings

log = logging.getLogger(__name__)

#: Column names recognised in input files, first match wins (English, OSM and Chinese headers);
#: the roles of buildings, roads and areas are declared in geodata.schema.
NAME_COLUMNS = ("name", "名称", "name:zh", "NAME", "Name")
CODE_COLUMNS = ("code", "编码", "编号", "CODE", "Code")
KIND_COLUMNS = ("building", "kind", "type", "类型")
ADDRESS_COLUMNS = ("address", "地址", "addr:full")

#: A field mapping given by the user: role → column (or ``column/number``).
FieldMapping = dict[str, str]
#: A scope check: raises when the caller may not write at this place (named by its code).
PlaceCheck = Callable[[Place, str], None]

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
    #: Which column played each role (building class, levels, road class …), and the schema.
    fields: dict[str, str] = field(default_factory=dict)
    schema: str | None = None
    #: Loud warnings: the data looks read through the wrong columns.
    warnings: list[str] = field(default_factory=list)
    #: Buildings and incidents whose community or cell the import changes.
    moves: moves.MoveReport | None = None

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
        if self.codes and self.kind != "cells":
            out.append(
                (
                    "新建编码 codes",
                    ", ".join(self.codes[:10]) + (" …" if len(self.codes) > 10 else ""),
                )
            )
        if self.schema:
            out.append(("识别的格式 schema", self.schema))
        for role, column in self.fields.items():
            out.append((f"{ROLE_LABELS.get(role, role)} ({role}) 取自列", column))
        if self.moves is not None:
            out.append(("改变社区/网格的楼栋 buildings moved", str(self.moves.moved_buildings)))
            out.append(("其中户数 households moved", str(self.moves.moved_households)))
            out.append(("改变社区/网格的事件 incidents moved", str(self.moves.moved_incidents)))
            out.append(("首次归入社区/网格 newly assigned", str(self.moves.newly_assigned)))
        out.append(("written", "yes (committed)" if self.committed else "no (dry run)"))
        return out

    def as_dict(self, *, with_moved_items: bool = False) -> dict[str, Any]:
        """JSON-ready form for the API (the moved items themselves only when asked)."""
        skip = ("repaired", "rejected", "moves", "schema")
        data = {k: v for k, v in self.__dict__.items() if k not in skip}
        data["schema_name"] = self.schema
        data["repaired"] = [note.__dict__ for note in self.repaired]
        data["rejected"] = [note.__dict__ for note in self.rejected]
        if self.moves is not None:
            data["moves"] = self.moves.as_dict()
            if not with_moved_items:
                data["moves"]["items"] = []
        return data


def run_in_savepoint(
    session: Session,
    work: Callable[[], ImportSummary],
    *,
    commit: bool,
    allow_move: bool = False,
) -> ImportSummary:
    """Run an import inside a SAVEPOINT: committed with `commit`, else rolled back (dry run).

    Only the import's own writes are undone by a dry run or a failure; nothing is half-written.
    A commit that would move existing buildings or incidents to another community or cell is
    refused (Conflict, nothing written) unless `allow_move`; a dry run reports the moves.
    """
    from gridsvc.services import audit

    # Imports are logged once, as a summary, rather than row by row.
    with audit.bulk(session), savepoint(session, keep=commit):
        summary = work()
        if commit and not allow_move and summary.moves is not None and summary.moves.any:
            moves.refuse_moves(summary.moves)
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
                "fields": summary.fields,
                "moved_buildings": summary.moves.moved_buildings if summary.moves else 0,
                "moved_incidents": summary.moves.moved_incidents if summary.moves else 0,
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


def _addresses(gdf: pd.DataFrame, explicit_column: pd.Series | None) -> list[str | None]:
    n = len(gdf)
    explicit = _text(explicit_column, n)
    street = _text(gdf.get("addr:street"), n)
    number = _text(gdf.get("addr:housenumber"), n)
    return [
        e or ("".join(p for p in (s, h) if p) or None)
        for e, s, h in zip(explicit, street, number, strict=True)
    ]


def _extra_properties(
    gdf: pd.DataFrame, used: set[str], added: dict[str, pd.Series] | None = None
) -> list[str]:
    """The attributes not mapped to columns, as one JSON object per row (nulls left out), with
    the `added` normalised values (e.g. bridge/tunnel flags) where they are set."""
    extra = gdf.drop(columns=[c for c in gdf.columns if c in used or c == "geometry"])
    extra = extra.dropna(axis=1, how="all")  # OSM extracts carry many empty tag columns
    for name, series in (added or {}).items():
        extra[name] = series.to_numpy()
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
    if column in NAME_COLUMNS or column in AREA_ROLES["name"]:
        return MAX_NAME
    if column in (*CODE_COLUMNS, *BUILDING_ROLES["building"], *CATEGORY_COLUMNS, *REPORTER_COLUMNS):
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


def _start_summary(
    kind: str, source: str, result: ReadResult, fields: Fields | None = None
) -> ImportSummary:
    check_text_lengths(result.gdf)
    return ImportSummary(
        kind=kind,
        source=source,
        features_read=result.feature_count_read,
        repaired=list(result.notes),
        rejected=list(result.rejected),
        fields=dict(fields.used) if fields else {},
        schema=fields.schema if fields else None,
    )


def _watch(session: Session, gdf: gpd.GeoDataFrame, *, source: str | None = None) -> str:
    """Snapshot what an import of `gdf` can move; returns the envelope (WKT) it covers."""
    envelope = shapely.box(*gdf.total_bounds).wkt
    ids = _text(gdf["source_id"], len(gdf)) if source and "source_id" in gdf else None
    moves.snapshot(session, envelope, source=source, ids=[i for i in ids or [] if i])
    return envelope


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
    fields: FieldMapping | None = None,
) -> ImportSummary:
    """Insert or update buildings (keyed by source + source id), then assign them.

    Each role (class, levels, households, name …) is read from the column `fields` names, else
    from the first known column (geodata.schema); the summary says which. Buildings with no
    household count get an estimate (residential only), marked estimated; when most get 0 for
    want of a known class, the summary warns. What moves to another community or cell is
    reported (and refused on commit by :func:`run_in_savepoint` unless allowed).
    """
    gdf = result.gdf
    roles = resolve_fields(gdf, "buildings", fields, height_per_level_m=geo.height_per_level_m)
    summary = _start_summary("buildings", source, result, roles)
    n = len(gdf)
    if n == 0:
        return summary
    standard = gpd.GeoDataFrame(
        {
            role: roles.get(key).to_numpy() if roles.get(key) is not None else [None] * n
            for role, key in (
                ("building", "building"),
                ("building:levels", "levels"),
                ("households", "households"),
            )
        },
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    )
    households, estimated = estimate_households(
        standard, dwelling_area_m2=geo.dwelling_area_m2, default_levels=geo.default_levels
    )
    levels_source = roles.get("levels")
    levels = (
        [None if pd.isna(v) else int(v) for v in parse_levels(levels_source).tolist()]
        if levels_source is not None
        else [None] * n
    )
    used = {"source_id", *roles.source_columns, "addr:street", "addr:housenumber"}
    kinds = _text(roles.get("building"), n)
    columns = {
        "source": [source] * n,
        "source_id": _text(gdf["source_id"], n),
        "name": _text(roles.get("name"), n),
        "address": _addresses(gdf, roles.get("address")),
        "kind": kinds,
        "levels": [v if v is None or 0 < v < 200 else None for v in levels],
        "units": _ints(roles.get("units"), n),
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
    if "building" not in roles.used:
        summary.warnings.append(
            "文件中没有可识别的楼栋类别列，所有楼栋都不会估算户数；"
            "请用 --field building=列名 指明类别列"
        )
    problem = household_basis_problem(
        kinds, columns["households"], max_zero_share=geo.zero_households_max_share
    )
    if problem:
        used_column = roles.used.get("building", "（无）")
        summary.warnings.append(
            f"{problem}。类别取自列 {used_column}，可能不是楼栋类别；自动划格将拒绝这些数据。"
            "请用 --field building=列名（如 kind_detail、类型）重新导入"
        )

    envelope = _watch(session, gdf, source=source)
    rows = zip(*(columns[c] for c in _BUILDING_COLUMNS), strict=True)
    summary.inserted, summary.updated = upsert_rows(
        session, "building", _BUILDING_COLUMNS, _report(rows, progress)
    )

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
    summary.moves = moves.compare(session)
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
def import_estates(
    session: Session, result: ReadResult, *, source: str, fields: FieldMapping | None = None
) -> ImportSummary:
    """Insert estates (小区) and attach buildings and communities to them."""
    roles = resolve_fields(result.gdf, "areas", fields)
    summary = _start_summary("estates", source, result, roles)
    gdf = result.gdf
    n = len(gdf)
    rows = zip(
        _text(roles.get("name"), n),
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
    session: Session,
    result: ReadResult,
    *,
    street_id: int,
    street_code: str,
    source: str,
    fields: FieldMapping | None = None,
    overlap_tolerance_m2: float = 1.0,
) -> ImportSummary:
    """Insert communities of a street; codes from the file or street code + sequence.

    Communities that overlap each other or an existing community (by more than the tolerance)
    are refused, the pairs named; buildings and incidents that would change community are
    reported (refused on commit unless allowed, see :func:`run_in_savepoint`).
    """
    roles = resolve_fields(result.gdf, "areas", fields)
    summary = _start_summary("communities", source, result, roles)
    gdf = result.gdf
    n = len(gdf)
    if n == 0:
        return summary
    names = _text(roles.get("name"), n)
    codes = _text(roles.get("code"), n)
    geoms_hex = ewkb_hex(gdf.geometry.values)
    moves.refuse_overlaps(
        moves.overlaps_in_file(gdf.geometry.values, names, codes, tolerance_m2=overlap_tolerance_m2)
        + moves.overlaps_with_existing(
            session,
            geoms_hex,
            names,
            codes,
            level="community",
            tolerance_m2=overlap_tolerance_m2,
        ),
        "社区",
    )
    missing = [i for i, c in enumerate(codes) if c is None]
    if missing:
        geoms = np.asarray(gdf.geometry.values, dtype=object)[missing]
        for idx, code in zip(
            missing, next_codes(session, Community.code, street_code, geoms), strict=True
        ):
            codes[idx] = code
    _refuse_existing_codes(session, Community.code, codes, "community")
    envelope = _watch(session, gdf)
    for code, name, geom in zip(codes, names, gdf.geometry.values, strict=True):
        session.add(
            Community(code=code, name=name or code, street_id=street_id, geom=to_db_geometry(geom))
        )
    session.flush()
    summary.inserted = n
    summary.codes = [c for c in codes if c]
    assign_buildings_to_areas(session, envelope_wkt=envelope)
    summary.moves = moves.compare(session)
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
    fields: FieldMapping | None = None,
    overlap_tolerance_m2: float | None = None,
    check_place: PlaceCheck | None = None,
) -> ImportSummary:
    """Create cells (version 1) from polygons, give them codes, and assign buildings.

    `check_place` (the API's scope check) is called with the place and code of every community
    the cells go to, before anything else is checked or written.

    With `overlap_tolerance_m2` (file imports), cells overlapping each other or a current cell
    of the same kind are refused, the pairs named.

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
    communities = {
        cid: session.execute(
            select(Community.code, Community.name).where(Community.id == cid)
        ).one()
        for cid in set(community_ids)
    }
    if check_place is not None:  # before anything about the area is said (overlaps name cells)
        for cid in sorted(communities):
            street_id = session.scalar(select(Community.street_id).where(Community.id == cid))
            check_place(Place(street_id=street_id, community_id=cid), communities[cid][0])
    roles = resolve_fields(gdf, "areas", fields)
    names = _text(roles.get("name"), n)
    codes = _text(roles.get("code"), n)
    if overlap_tolerance_m2 is not None:
        moves.refuse_overlaps(
            moves.overlaps_in_file(
                gdf.geometry.values, names, codes, tolerance_m2=overlap_tolerance_m2
            )
            + moves.overlaps_with_existing(
                session,
                geoms_hex,
                names,
                codes,
                level="cell",
                kind=kind,
                tolerance_m2=overlap_tolerance_m2,
            ),
            "同类网格",
        )
        summary.fields = dict(roles.used)
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
    watch = overlap_tolerance_m2 is not None
    if watch:
        _watch(session, gdf)
    for cid in communities:
        assign_buildings_to_cells(session, community_id=cid)
    if watch:
        summary.moves = moves.compare(session)
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
    fields: FieldMapping | None = None,
    overlap_tolerance_m2: float = 1.0,
    check_place: PlaceCheck | None = None,
) -> ImportSummary:
    """Create cells from a file (see :func:`create_cells`); overlaps are refused."""
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
        fields=fields,
        overlap_tolerance_m2=overlap_tolerance_m2,
        check_place=check_place,
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
def import_roads(
    session: Session,
    result: ReadResult,
    *,
    source: str,
    fields: FieldMapping | None = None,
    unclassified_max_share: float = 0.5,
) -> ImportSummary:
    """Insert or update road centre lines, keyed by source + source id.

    The road class (OSM ``highway``, Tilezen ``kind_detail``/``kind``, Mapbox/OpenMapTiles
    ``class``, 道路等级 …, or the column `fields` names) is stored normalised to OSM values in
    ``road.highway`` — rail lines as ``rail``, ferry routes as ``ferry`` — and bridges/tunnels
    as ``bridge``/``tunnel`` = ``yes`` in the properties, which is what block barriers read.
    When most roads have no class, the summary warns.
    """
    gdf = result.gdf
    roles = resolve_fields(gdf, "roads", fields)
    summary = _start_summary("roads", source, result, roles)
    n = len(gdf)
    classes = _text(roles.get("road_class"), n)
    flags = {
        role: roles.get(role)
        if roles.get(role) is not None
        else pd.Series([None] * n, index=gdf.index, dtype=object)
        for role in ("bridge", "tunnel")
    }
    problem = road_class_problem(classes, max_missing_share=unclassified_max_share)
    if problem:
        summary.warnings.append(
            f"{problem}（等级取自列 {roles.used.get('road_class', '（无）')}）；自动划格将拒绝这些数据。"
            "请用 --field road_class=列名 重新导入"
        )
    columns = ("source", "source_id", "name", "highway", "geom", "properties")
    used = {"source_id", "bridge", "tunnel", *roles.source_columns}
    summary.inserted, summary.updated = upsert_rows(
        session,
        "road",
        columns,
        zip(
            [source] * n,
            _text(gdf["source_id"], n),
            _text(roles.get("name"), n),
            classes,
            ewkb_hex(gdf.geometry.values),
            _extra_properties(gdf, used, flags),
            strict=True,
        ),
    )
    return summary


def parse_mapping_json(text_value: str | None) -> FieldMapping:
    """A field mapping sent as JSON text (the API's `fields` form field): role → column."""
    if not text_value:
        return {}
    try:
        data = json.loads(text_value)
    except ValueError as exc:
        raise InvalidInput(f"fields 不是有效的 JSON：{exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise InvalidInput('fields 应是 角色 → 列名 的 JSON 对象，例如 {"building": "kind_detail"}')
    return dict(data)
