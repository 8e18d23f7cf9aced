"""The FastAPI application: create_app() wires settings, routes and error handlers."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from gridsvc import __version__
from gridsvc.api import audit, csp, exports, pages, problems, tiles, workbench
from gridsvc.api.incidents import router as incidents_router
from gridsvc.api.limits import JsonBodyLimits
from gridsvc.api.open311 import router as open311_router
from gridsvc.api.people import router as people_router
from gridsvc.api.replication import ReadYourWrites
from gridsvc.api.routes import router
from gridsvc.ogc.routes import router as ogc_router
from gridsvc.services import maps as map_service
from gridsvc.settings import get_settings
from maps.assets import asset_dir

log = logging.getLogger(__name__)


def create_app() -> FastAPI:
    """A configured app; the database must already be migrated (the CLI does it before serving)."""
    app = FastAPIOffline(
        title="gridsvc 网格化管理服务",
        version=__version__,
        description=(
            "Grid-based community management: streets, communities, cells (网格), buildings, "
            "households and incidents. Sign in at `/api/v1/auth/token`; every route is limited "
            "to your scope. Map data © OpenStreetMap contributors where imported from OSM."
        ),
        static_url="/static/docs",
        # ReDoc's bundle fetches its logo from a CDN; Swagger UI (/docs) works fully offline.
        redoc_url=None,
        # Our own /docs (gridsvc.api.csp): the same offline Swagger UI, its script nonced.
        docs_url=None,
    )
    # Every response: a nonce, the Content-Security-Policy and nosniff (gridsvc.csp).
    app.add_middleware(csp.SecurityHeaders, img_sources=map_service.tile_sources())
    problems.install(app)
    app.include_router(
        csp.docs_router(app.title, app.openapi_url or "/openapi.json", "/static/docs")
    )
    app.include_router(csp.router)
    app.add_middleware(JsonBodyLimits)
    if get_settings().db.replica_url_list:  # reads go to replicas: tell writers their position
        app.add_middleware(ReadYourWrites)
    # Before the main router: /api/v1/imports/roster must win over /api/v1/imports/{kind}.
    app.include_router(people_router)
    app.include_router(router)
    app.include_router(exports.router)
    app.include_router(pages.router)
    app.include_router(workbench.router)
    # Pinned Leaflet and plugins (fetched at setup) and our own page scripts: nothing from a CDN.
    app.mount("/static/vendor", StaticFiles(directory=asset_dir(), check_dir=False), "vendor")
    app.mount("/static/ui", StaticFiles(directory=_UI_STATIC), "ui_static")
    app.include_router(incidents_router)
    app.include_router(open311_router)
    app.include_router(audit.router)
    app.include_router(tiles.router)
    app.include_router(ogc_router)
    return app


_UI_STATIC = Path(__file__).resolve().parent / "static" / "ui"
