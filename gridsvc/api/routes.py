"""All routes of the v1 API; each one translates HTTP to a service or repository call."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from geodata.china import Datum
from geodata.readers import read_features
from gridsvc.api.deps import (
    CurrentUser,
    Importer,
    PageDep,
    ScopedCell,
    ScopedCommunity,
    SessionDep,
    SignInLimit,
    StaffUser,
    client_address,
    forget_principal,
)
from gridsvc.api.redraw import router as redraw_router
from gridsvc.api.responses import (
    GEOJSON,
    GEOJSON_FEATURE_RESPONSE,
    GEOJSON_RESPONSE,
    GeoJSONResponse,
    geojson_page,
)
from gridsvc.auth.masking import mask_personal
from gridsvc.auth.policy import require, require_in_scope
from gridsvc.domain import MAX_CODE, MAX_NAME
from gridsvc.errors import InvalidInput, TooLarge
from gridsvc.repositories import areas as area_repo
from gridsvc.repositories import cells as cell_repo
from gridsvc.repositories.geojson import feature_collection
from gridsvc.schemas import (
    CellLookup,
    HealthOut,
    HouseholdPage,
    ImportResult,
    MeOut,
    TokenOut,
)
from gridsvc.security import create_access_token
from gridsvc.services import imports
from gridsvc.services import lookup as lookup_service
from gridsvc.services.users import authenticate, sign_out
from gridsvc.settings import get_settings

router = APIRouter()
api = APIRouter(prefix="/api/v1")


@router.get("/health", response_model=HealthOut, tags=["system"])
@api.get("/health", response_model=HealthOut, tags=["system"])
def health(session: SessionDep) -> HealthOut:
    """Liveness and database check (no sign-in needed)."""
    postgis = session.execute(text("SELECT postgis_lib_version()")).scalar_one()
    return HealthOut(status="ok", database="ok", postgis=postgis)


class SignInForm(OAuth2PasswordRequestForm):
    """The OAuth2 password form (as FastAPI's), with every field's length bounded."""

    def __init__(
        self,
        *,
        grant_type: Annotated[str | None, Form(pattern="^password$", max_length=8)] = None,
        username: Annotated[str, Form(max_length=MAX_NAME)],
        password: Annotated[
            str, Form(max_length=MAX_NAME, json_schema_extra={"format": "password"})
        ],
        scope: Annotated[str, Form(max_length=MAX_NAME)] = "",
        client_id: Annotated[str | None, Form(max_length=MAX_NAME)] = None,
        client_secret: Annotated[
            str | None, Form(max_length=MAX_NAME, json_schema_extra={"format": "password"})
        ] = None,
    ) -> None:
        super().__init__(
            grant_type=grant_type,
            username=username,
            password=password,
            scope=scope,
            client_id=client_id,
            client_secret=client_secret,
        )


@api.post("/auth/token", response_model=TokenOut, tags=["auth"], dependencies=[SignInLimit])
def login(
    request: Request,
    session: SessionDep,
    form: Annotated[SignInForm, Depends()],
) -> TokenOut:
    """OAuth2 password sign-in; returns a bearer token (JWT). Wrong passwords for a user name
    from one address make it wait ever longer (429 with Retry-After)."""
    user = authenticate(session, form.username, form.password, client_address(request))
    token = create_access_token(user.id, user.role, user.token_version)
    return TokenOut(access_token=token, token_type="bearer")


@api.post("/auth/logout", status_code=204, tags=["auth"])
def logout(session: SessionDep, user: CurrentUser) -> Response:
    """Sign out everywhere: every token of the signed-in user stops working."""
    sign_out(session, user.id)
    forget_principal(user.id)
    return Response(status_code=204)


@api.get("/me", response_model=MeOut, tags=["auth"])
def me(user: CurrentUser) -> MeOut:
    """The signed-in user and their scope."""
    return MeOut(
        username=user.username,
        role=user.role,
        scope=user.scope_label,
        street_id=user.street_id,
        community_id=user.community_id,
        cell_id=user.cell_id,
    )


@api.get("/communities", responses=GEOJSON_RESPONSE, response_class=GeoJSONResponse, tags=["areas"])
def list_communities(session: SessionDep, user: CurrentUser) -> Response:
    """Communities in your scope, as a GeoJSON FeatureCollection with counts."""
    return Response(
        feature_collection(area_repo.community_features(session, user)[0]), media_type=GEOJSON
    )


@api.get(
    "/communities/{code}/cells",
    responses=GEOJSON_RESPONSE,
    response_class=GeoJSONResponse,
    tags=["cells"],
)
def community_cells(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    community: ScopedCommunity,
    page: PageDep,
) -> Response:
    """Current cells of a community (those in your scope), paged."""
    result = cell_repo.cell_features(
        session, user, community_id=community.id, limit=page.limit, offset=page.offset
    )
    return geojson_page(request, page.limit, page.offset, result)


@api.get("/cells", responses=GEOJSON_RESPONSE, response_class=GeoJSONResponse, tags=["cells"])
def list_cells(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
    kind: Annotated[Literal["general", "dedicated", "micro"] | None, Query()] = None,
) -> Response:
    """Current cells in your scope, as a paged GeoJSON FeatureCollection."""
    result = cell_repo.cell_features(session, user, kind=kind, limit=page.limit, offset=page.offset)
    return geojson_page(request, page.limit, page.offset, result)


@api.get(
    "/cells/{code}",
    responses=GEOJSON_FEATURE_RESPONSE,
    response_class=GeoJSONResponse,
    tags=["cells"],
)
def get_cell(session: SessionDep, user: CurrentUser, cell: ScopedCell) -> Response:
    """One cell as a GeoJSON Feature (its current boundary, counts and 格长)."""
    return Response(cell_repo.cell_feature(session, user, cell.id), media_type=GEOJSON)


@api.get(
    "/cells/{code}/buildings",
    responses=GEOJSON_RESPONSE,
    response_class=GeoJSONResponse,
    tags=["cells"],
)
def cell_buildings(
    request: Request, session: SessionDep, cell: ScopedCell, page: PageDep
) -> Response:
    """Buildings assigned to the cell, as a paged GeoJSON FeatureCollection."""
    result = cell_repo.building_features(session, cell.id, limit=page.limit, offset=page.offset)
    return geojson_page(request, page.limit, page.offset, result)


@api.get(
    "/communities/{code}/buildings",
    responses=GEOJSON_RESPONSE,
    response_class=GeoJSONResponse,
    tags=["areas"],
)
def community_buildings(
    request: Request, session: SessionDep, community: ScopedCommunity, page: PageDep
) -> Response:
    """Buildings of the community (with the code of their cell), as a paged FeatureCollection."""
    result = cell_repo.building_features(
        session, community_id=community.id, limit=page.limit, offset=page.offset
    )
    return geojson_page(request, page.limit, page.offset, result)


@api.get("/cells/{code}/households", response_model=HouseholdPage, tags=["cells"])
def cell_households(
    session: SessionDep, user: CurrentUser, cell: ScopedCell, page: PageDep
) -> HouseholdPage:
    """Households living in the cell's buildings, paged; personal fields masked for viewers."""
    rows, total = cell_repo.households(session, cell.id, limit=page.limit, offset=page.offset)
    return HouseholdPage(
        items=[mask_personal(user, row) for row in rows],
        number_matched=total,
        number_returned=len(rows),
        limit=page.limit,
        offset=page.offset,
    )


@api.get("/lookup", response_model=CellLookup, tags=["cells"])
async def lookup(
    session: SessionDep,
    user: CurrentUser,
    lon: Annotated[float, Query(ge=-180, le=180, description="longitude, WGS84")],
    lat: Annotated[float, Query(ge=-90, le=90, description="latitude, WGS84")],
    datum: Annotated[Datum, Query(description="datum of the point")] = Datum.WGS84,
) -> CellLookup:
    """Which cell (and community) holds a point; GCJ-02/BD-09 points are converted first."""
    point, hit = await run_in_threadpool(lookup_service.locate, session, user, lon, lat, datum)
    return CellLookup(
        lon=point.x,
        lat=point.y,
        cell_code=hit.cell.code if hit.cell else None,
        cell_name=hit.cell.name if hit.cell else None,
        community_code=hit.community_code,
    )


@api.post("/communities/{code}/cells", response_model=ImportResult, status_code=201, tags=["cells"])
def create_cells(
    session: SessionDep,
    user: StaffUser,
    community: ScopedCommunity,
    collection: Annotated[
        dict[str, Any], Body(description="GeoJSON FeatureCollection of polygons")
    ],
    kind: Annotated[Literal["general", "dedicated", "micro"], Query()] = "general",
    datum: Annotated[Datum, Query()] = Datum.WGS84,
) -> ImportResult:
    """Create cells in a community from GeoJSON polygons, and assign buildings to them."""
    summary = imports.create_cells_from_geojson(
        session,
        collection,
        community=community,
        kind=kind,
        datum=datum,
        user=user.username,
        max_features=get_settings().app.max_import_features,
        limits=get_settings().app.input_limits(),
    )
    return ImportResult(**summary.as_dict())


@api.post("/imports/{kind}", response_model=ImportResult, tags=["imports"])
def import_file(
    session: SessionDep,
    user: Importer,
    kind: Literal["buildings", "estates", "cells", "incidents", "roads", "communities"],
    file: Annotated[
        UploadFile,
        File(description="GeoJSON, GeoPackage, zipped Shapefile, KML, CSV, XLSX or OSM XML"),
    ],
    datum: Annotated[Datum, Form()] = Datum.WGS84,
    community: Annotated[
        str | None, Form(max_length=MAX_CODE, description="community code (cells)")
    ] = None,
    commit: Annotated[bool, Form(description="write; without it this is a dry run")] = False,
    street: Annotated[
        str | None, Form(max_length=MAX_CODE, description="street code (communities)")
    ] = None,
    fields: Annotated[
        str | None,
        Form(
            max_length=4000,
            description='field mapping as JSON, e.g. {"building": "kind_detail", '
            '"levels": "height/3"}',
        ),
    ] = None,
    allow_move: Annotated[
        bool,
        Query(
            description="allow the import to move existing buildings or incidents to "
            "another community or cell (refused by default)"
        ),
    ] = False,
    show_moves: Annotated[bool, Query(description="list every item that would move")] = False,
) -> ImportResult:
    """Import a file: a dry run by default that reports what it would do; commit=true writes.

    The summary names the column used for each role, the codes created, warnings, and what
    would move to another community or cell; a commit that moves anything without
    allow_move=true is refused (409) and writes nothing."""
    if kind != "cells":
        require(user, "areas.import")
    settings = get_settings()
    mapping = imports.parse_mapping_json(fields)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(file.filename or "upload").name
        _save_upload(file, path, settings.app.max_upload_bytes)
        result = read_features(
            path,
            kind={"incidents": "point", "roads": "line"}.get(kind, "polygon"),
            datum=datum,
            max_features=settings.app.max_import_features,
            limits=settings.app.input_limits(),
            osm_filter={"buildings": {"building": None}, "roads": {"highway": None}}.get(kind),
        )
        if kind == "cells" and community:
            place = area_repo.get_community(session, community).place
            require_in_scope(user, place, f"community {community}")

        geo = settings.geo

        def work() -> imports.ImportSummary:
            if kind == "buildings":
                return imports.import_buildings(
                    session, result, source=path.stem, geo=geo, fields=mapping
                )
            if kind == "estates":
                return imports.import_estates(session, result, source=path.stem, fields=mapping)
            if kind == "incidents":
                return imports.import_incidents(session, result, source=path.stem)
            if kind == "roads":
                return imports.import_roads(
                    session,
                    result,
                    source=path.stem,
                    fields=mapping,
                    unclassified_max_share=geo.unclassified_roads_max_share,
                )
            if kind == "communities":
                if not street:
                    raise InvalidInput("导入社区需要给出所属街道编码 street")
                street_ref = area_repo.get_street(session, street)
                require_in_scope(user, street_ref.place, f"street {street}")
                return imports.import_communities(
                    session,
                    result,
                    street_id=street_ref.id,
                    street_code=street,
                    source=path.stem,
                    fields=mapping,
                    overlap_tolerance_m2=geo.overlap_tolerance_m2,
                )
            summary = imports.import_cells(
                session,
                result,
                source=path.stem,
                community_code=community,
                changed_by=user.username,
                fields=mapping,
                overlap_tolerance_m2=geo.overlap_tolerance_m2,
                check_place=lambda place, code: require_in_scope(user, place, f"community {code}"),
            )
            # Without a community each cell goes to the community holding it: every one must
            # lie in the importer's scope (else the whole import is undone).
            for code in summary.codes:
                require_in_scope(user, cell_repo.get_cell(session, code).place, f"new cell {code}")
            return summary

        summary = imports.run_in_savepoint(session, work, commit=commit, allow_move=allow_move)
    return ImportResult(**summary.as_dict(with_moved_items=show_moves))


def _save_upload(upload: UploadFile, path: Path, limit: int) -> None:
    size = 0
    with open(path, "wb") as out:
        while chunk := upload.file.read(1024 * 1024):
            size += len(chunk)
            if size > limit:
                raise TooLarge(
                    f"the upload is larger than the limit of {limit // (1024 * 1024)} MiB"
                )
            out.write(chunk)
    if size == 0:
        raise InvalidInput("the uploaded file is empty")


router.include_router(api)
router.include_router(redraw_router)
