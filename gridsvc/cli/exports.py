"""gridsvc export: report maps, tables and layers of a cell, community or street."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gridsvc.cli.common import acting_as, app, console, fail, open_session
from gridsvc.errors import GridsvcError

if TYPE_CHECKING:
    pass

# -- exports -----------------------------------------------------------------------------------


@app.command("export")
def export_command(
    kind: Annotated[str, typer.Argument(help="cell, community or street")],
    code: Annotated[str, typer.Argument(help="its code, e.g. 320102001001")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="png, pdf, html, xlsx, gpkg, geojson, shp, kml")
    ] = "pdf",
    map_kind: Annotated[
        str,
        typer.Option("--map", help="png/pdf: coverage, area (区域平面图), buildings (楼房平面图)"),
    ] = "coverage",
    metric: Annotated[
        str, typer.Option(help="coverage figure colouring the cells, e.g. households")
    ] = "households",
    layers: Annotated[
        str | None,
        typer.Option(help="GIS formats: comma-separated cells,buildings,incidents,households"),
    ] = None,
    paper: Annotated[str, typer.Option(help="A4 or A3")] = "A4",
    orientation: Annotated[str, typer.Option(help="portrait or landscape")] = "landscape",
    crs: Annotated[
        str,
        typer.Option(help="GIS formats: EPSG:4326, EPSG:4490 (CGCS2000), EPSG:3857 or GCJ-02"),
    ] = "EPSG:4326",
    as_user: Annotated[
        str | None,
        typer.Option("--as-user", help="apply this user's scope and masking (default: operator)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="file to write (default: a dated name here)")
    ] = None,
) -> None:
    """Export a coverage map, tables or GIS layers of a cell, community or street."""
    from gridsvc.services import exports
    from gridsvc.services.maps import area_for

    if format not in exports.EXPORT_FORMATS:
        fail(f"unknown format {format!r}; choose from {', '.join(exports.EXPORT_FORMATS)}", 2)
    with open_session() as session:
        try:
            principal = acting_as(session, as_user)
            area = area_for(session, principal, kind, code)  # type: ignore[arg-type]
            with console.status(f"exporting {area.name} ({area.code}) as {format} …"):
                result = exports.export(
                    session,
                    principal,
                    area,
                    format,
                    layers=layers.split(",") if layers else None,
                    kind=map_kind,
                    metric=metric,
                    paper=paper,
                    orientation=orientation,
                    crs=crs,
                )
        except GridsvcError as exc:
            fail(exc.detail, 2)
    target = out or Path(result.filename)
    target.write_bytes(result.content)
    console.print(f"wrote {target} ({len(result.content) / 1024:.0f} KiB, {result.media_type})")
