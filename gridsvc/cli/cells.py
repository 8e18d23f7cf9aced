"""gridsvc cells (assign, validate, propose, history) and gridsvc outline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from geodata.datum import Datum
from gridsvc.cli.common import app, console, fail, open_session
from gridsvc.cli.imports import DatumOpt, _read

if TYPE_CHECKING:
    pass

cells_app = typer.Typer(help="Work with cells (网格).", no_args_is_help=True)
app.add_typer(cells_app, name="cells")


# -- cells ----------------------------------------------------------------------------------
@cells_app.command("assign")
def cells_assign(
    community: Annotated[str | None, typer.Option(help="only this community")] = None,
) -> None:
    """Re-assign buildings to cells (largest share of footprint), in SQL."""
    from gridsvc.repositories.areas import get_community
    from gridsvc.services.assignment import assign_buildings_to_cells

    with open_session() as session:
        cid = get_community(session, community).id if community else None
        result = assign_buildings_to_cells(session, community_id=cid)
        session.commit()
    console.print(
        f"{result.considered} buildings looked at, {result.changed} changed cell, "
        f"{result.unassigned} in no cell"
    )


@cells_app.command("validate")
def cells_validate(
    community: Annotated[str, typer.Argument(help="community code")],
    tolerance_m: Annotated[
        float,
        typer.Option(help="also ignore gaps/overlaps thinner than this (m; 0: report all)"),
    ] = 0.0,
    sliver_m2: Annotated[float, typer.Option(help="parts smaller than this are slivers")] = 50.0,
    geojson: Annotated[Path | None, typer.Option(help="also write the problems as GeoJSON")] = None,
) -> None:
    """Check that a community's cells tile it: gaps, overlaps, outside parts, split cells,
    slivers, unassigned buildings, cells without a 格长, household counts outside the band."""
    from gridsvc.repositories.areas import get_community
    from gridsvc.services.validation import validate_community

    with open_session() as session:
        report = validate_community(
            session,
            get_community(session, community),
            tolerance_m=tolerance_m,
            sliver_m2=sliver_m2,
        )
    table = Table(
        "问题 problem",
        "网格 cells",
        "详情 detail",
        title=f"{community}: {report.cells_checked} cells checked",
    )
    for problem in report.problems[:200]:
        table.add_row(problem.kind, ", ".join(problem.cells), problem.detail)
    console.print(
        table if report.problems else f"{community}: {report.cells_checked} cells, no problems"
    )
    if geojson:
        geojson.write_text(json.dumps(report.to_geojson(), ensure_ascii=False))
        console.print(f"problems written to {geojson}")
    if not report.ok:
        raise typer.Exit(2)


@cells_app.command("propose")
def cells_propose(
    community: Annotated[str, typer.Argument(help="community code")],
    target: Annotated[int, typer.Option(help="households per cell")] = 300,
    band_min: Annotated[int, typer.Option(help="fewest households per cell")] = 200,
    band_max: Annotated[int, typer.Option(help="most households per cell")] = 500,
    output: Annotated[Path | None, typer.Option("-o", help="write the proposal as GeoJSON")] = None,
    commit: Annotated[bool, typer.Option("--commit", help="replace the cells by it")] = False,
    reason: Annotated[str | None, typer.Option(help="why (required with --commit)")] = None,
    keep_current: Annotated[
        bool,
        typer.Option("--keep-current", help="start from today's cells; move only what must move"),
    ] = False,
) -> None:
    """Propose a balanced partition (自动划格) that follows roads, keeps estates together and
    never reaches across water (see `gridsvc import water`)."""
    from sqlalchemy import text

    from gridsvc.repositories.areas import get_community
    from gridsvc.services import redraw
    from gridsvc.services.proposals import propose_for_community

    if commit and not reason:
        fail("--commit needs --reason (it goes into the audit log)")
    with open_session() as session:
        ref = get_community(session, community)
        with console.status("partitioning …"):
            proposal = propose_for_community(
                session,
                ref,
                target=target,
                band=(band_min, band_max),
                keep_current=keep_current,
            )
        table = Table(
            "#",
            "户数 households",
            "楼栋 buildings",
            "面积 m²",
            "紧凑度 PP",
            "in band",
            title=f"proposal for {community}",
        )
        for i, f in enumerate(proposal["features"], 1):
            p = f["properties"]
            table.add_row(
                str(i),
                str(p["households"]),
                str(p["buildings"]),
                f"{p['area_m2']:.0f}",
                f"{p['polsby_popper']:.2f}",
                "yes" if p["in_band"] else f"no: {p.get('reason') or ''}",
            )
        console.print(table)
        console.print(proposal["summary"])
        if output:
            output.write_text(json.dumps(proposal, ensure_ascii=False, default=str))
            console.print(f"written to {output}")
        if commit:
            body = {"op": "proposal", "cells": proposal, "reason": reason}
            plan = redraw.plan_from_request(session, ref, body)
            revision = session.scalar(
                text("SELECT revision FROM community WHERE id = :i"), {"i": ref.id}
            )
            outcome = redraw.run(
                session,
                ref,
                plan,
                request={"op": "proposal", "target": target},
                reason=reason or "",
                user="cli",
                commit=True,
                if_match=redraw.etag_for(community, revision),
            )
            console.print(
                f"committed: {len(outcome.impact['cells_created'])} cells "
                f"replace {len(outcome.impact['cells_retired'])}"
            )


_GENERIC_STEMS = frozenset({"outline", "boundary", "area", "output", "buildings", "out"})


@app.command("outline")
def outline(
    buildings: Annotated[Path, typer.Argument(help="building footprints (any supported format)")],
    output: Annotated[Path, typer.Option("-o", help="where to write the outline (GeoJSON)")],
    roads: Annotated[Path | None, typer.Option(help="road centre lines it may follow")] = None,
    margin_m: Annotated[float, typer.Option(help="margin around the buildings (m)")] = 20.0,
    water: Annotated[
        Path | None, typer.Option(help="water areas the outline leaves out and never crosses")
    ] = None,
    single: Annotated[
        bool, typer.Option("--single", help="one polygon, joined even across water")
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(
            help="its name (default: the buildings' commonest street + 社区, or the file)"
        ),
    ] = None,
    datum: DatumOpt = Datum.WGS84,
) -> None:
    """Derive a community or street outline from buildings (and roads) when none is given:
    separate parts where water or open ground lies between groups of buildings. Import the
    result with `gridsvc import communities`."""
    import geopandas as gpd

    from geodata.partition import derive_outline, outline_name

    b = _read(path=buildings, datum=datum, layer=None, encoding=None, osm_filter={"building": None})
    r = (
        _read(roads, datum, None, None, osm_filter={"highway": None}, kind="line")
        if roads
        else None
    )
    w = _read(water, datum, None, None, kind="polygon") if water else None
    polygon = derive_outline(
        b.gdf, r.gdf if r else None, margin_m=margin_m, water=w.gdf if w else None, single=single
    )
    # the output file's name, unless it says nothing ("outline"): then the buildings' street
    label = name or output.stem
    if not name and output.stem.lower() in _GENERIC_STEMS:
        fallback = (
            buildings.parent.name if buildings.stem.lower() in _GENERIC_STEMS else buildings.stem
        )
        label = outline_name(b.gdf, fallback)
    gpd.GeoDataFrame({"name": [label]}, geometry=[polygon], crs=4326).to_file(output)
    parts = len(getattr(polygon, "geoms", [polygon]))
    console.print(
        f"{label}: outline of {len(b.gdf)} buildings in {parts} part(s) written to {output}"
    )


@cells_app.command("history")
def cells_history(cell: Annotated[str, typer.Argument(help="cell code")]) -> None:
    """List a cell's boundary versions with who changed them, when and why."""
    from gridsvc.repositories.cells import get_cell
    from gridsvc.services.history import versions

    with open_session() as session:
        info = versions(session, get_cell(session, cell).id)
    table = Table("version", "valid from", "valid to", "m²", "by", "reason", title=cell)
    for v in info["versions"]:
        table.add_row(
            str(v["version"]),
            f"{v['valid_from']:%Y-%m-%d %H:%M}",
            f"{v['valid_to']:%Y-%m-%d %H:%M}" if v["valid_to"] else "current",
            f"{v['area_m2']:.0f}",
            v["changed_by"] or "",
            v["reason"] or "",
        )
    console.print(table)
    if info["parents"] or info["children"]:
        console.print(
            f"parents: {', '.join(info['parents']) or '—'}; "
            f"children: {', '.join(info['children']) or '—'}"
        )
