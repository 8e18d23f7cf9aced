"""gridsvc import: geodata files into the database (dry run unless --commit)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from geodata.datum import Datum
from gridsvc.cli.common import app, console, fail, open_session
from gridsvc.errors import GridsvcError

if TYPE_CHECKING:
    from rich.progress import Progress

import_app = typer.Typer(
    help="Import geodata. Dry run by default: reports what it would do; --commit writes.",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")

# -- import ---------------------------------------------------------------------------------
FileArg = Annotated[
    Path, typer.Argument(help="GeoJSON, GPKG, SHP/ZIP, KML, CSV, XLSX or .osm file", exists=False)
]
DatumOpt = Annotated[Datum, typer.Option(help="datum of the file's coordinates")]
CommitOpt = Annotated[
    bool, typer.Option("--commit", help="write to the database (default: dry run)")
]
LayerOpt = Annotated[str | None, typer.Option(help="layer of a GeoPackage")]
EncodingOpt = Annotated[
    str | None, typer.Option(help="text encoding of a Shapefile/CSV (e.g. GBK)")
]
SourceOpt = Annotated[str | None, typer.Option(help="name of the data source (default: file name)")]
FieldOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--field",
        help="字段映射 角色=列名，可重复，例如 --field building=kind_detail --field levels=height/3",
    ),
]
FieldsFileOpt = Annotated[
    Path | None, typer.Option("--fields", help="字段映射文件（JSON 或 TOML：角色 → 列名）")
]
AllowMoveOpt = Annotated[
    bool,
    typer.Option(
        "--allow-move", help="允许导入改变已有楼栋、住户、事件的所属社区或网格（默认拒绝）"
    ),
]
ShowMovesOpt = Annotated[
    bool, typer.Option("--show-moves", help="逐项列出会改变社区或网格的楼栋和事件")
]


def _mapping(field: list[str] | None, fields_file: Path | None) -> dict[str, str]:
    """The field mapping of --fields (a file) overridden by each --field role=column."""
    from geodata.errors import GeodataError
    from geodata.schema import parse_field_options, read_mapping_file

    try:
        mapping = read_mapping_file(fields_file) if fields_file else {}
        mapping.update(parse_field_options(field or []))
    except GeodataError as exc:
        fail(str(exc))
    return mapping


def _read(
    path: Path,
    datum: Datum,
    layer: str | None,
    encoding: str | None,
    osm_filter: dict[str, str | None] | None = None,
    kind: str = "polygon",
):  # type: ignore[no-untyped-def]
    """Read a file for an import; a bad file ends the command with a clear message."""
    from geodata.errors import GeodataError
    from geodata.readers import read_features
    from gridsvc.settings import get_settings

    with console.status(f"reading {path.name} …"):
        try:
            return read_features(
                path,
                kind=kind,
                datum=datum,
                layer=layer,
                encoding=encoding,
                osm_filter=osm_filter,
                max_features=get_settings().app.max_import_features,
                limits=get_settings().app.input_limits(),
            )
        except GeodataError as exc:
            fail(str(exc))


def _run_import(  # type: ignore[no-untyped-def]
    work, commit: bool, *, allow_move: bool = False, show_moves: bool = False
) -> None:
    """Run an import in one transaction; commit or roll back; print the summary, the columns
    used, the warnings, the codes created and what moves."""
    from geodata.errors import GeodataError
    from gridsvc.services.imports import run_in_savepoint

    try:
        with open_session() as session:
            summary = run_in_savepoint(
                session, lambda: work(session), commit=commit, allow_move=allow_move
            )
    except GridsvcError as exc:
        fail(exc.detail)
    except GeodataError as exc:
        fail(str(exc))
    table = Table(title=f"import {summary.kind} from {summary.source}", show_header=False)
    for label, value in summary.rows():
        table.add_row(label, value)
    console.print(table)
    for note in summary.repaired[:20]:
        console.print(f"  repaired feature {note.index} ({note.source_id}): {note.reason}")
    for note in summary.rejected[:20]:
        console.print(
            f"  [yellow]rejected[/] feature {note.index} ({note.source_id}): {note.reason}"
        )
    if len(summary.repaired) + len(summary.rejected) > 40:
        console.print("  … (more notes not shown)")
    if summary.codes:
        console.print(f"新建编码（{len(summary.codes)}）：{', '.join(summary.codes)}")
    if summary.moves is not None and summary.moves.any:
        console.print("[bold yellow]会改变所属社区或网格：[/]")
        for group in summary.moves.groups:
            console.print(f"  {group.label()}")
        if show_moves:
            for item in summary.moves.items:
                what = "楼栋" if item["what"] == "building" else "事件"
                console.print(
                    f"    {what} {item['source_id'] or item['id']}：{item['from_community']}/"
                    f"{item['from_cell']} → {item['to_community']}/{item['to_cell']}"
                )
        elif not commit:
            console.print("  （加 --show-moves 逐项列出；提交时需加 --allow-move）")
    for warning in summary.warnings:
        console.print(f"[bold red]警告：[/]{warning}")
    if not commit:
        console.print("[yellow]dry run:[/] nothing was written; add --commit to write")


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@import_app.command("buildings")
def import_buildings(
    path: FileArg,
    datum: DatumOpt = Datum.WGS84,
    commit: CommitOpt = False,
    layer: LayerOpt = None,
    encoding: EncodingOpt = None,
    source: SourceOpt = None,
    field: FieldOpt = None,
    fields: FieldsFileOpt = None,
    allow_move: AllowMoveOpt = False,
    show_moves: ShowMovesOpt = False,
) -> None:
    """Import building footprints (OSM XML: every closed way/relation tagged building).

    Prints which column gave each role (class, levels, households, name); OSM, Tilezen, Mapbox
    Streets and 天地图/高德 columns are recognised, --field maps any other."""
    from gridsvc.services.imports import import_buildings as run
    from gridsvc.settings import get_settings

    mapping = _mapping(field, fields)
    result = _read(path, datum, layer, encoding, osm_filter={"building": None})
    name = source or ("osm" if path.suffix in (".osm", ".xml") else path.stem)

    def work(session):  # type: ignore[no-untyped-def]
        with _progress() as bar:
            task = bar.add_task("writing buildings", total=len(result.gdf))
            return run(
                session,
                result,
                source=name,
                geo=get_settings().geo,
                progress=lambda n: bar.advance(task, n),
                fields=mapping,
            )

    _run_import(work, commit, allow_move=allow_move, show_moves=show_moves)


@import_app.command("estates")
def import_estates(
    path: FileArg,
    datum: DatumOpt = Datum.WGS84,
    commit: CommitOpt = False,
    layer: LayerOpt = None,
    encoding: EncodingOpt = None,
    source: SourceOpt = None,
    field: FieldOpt = None,
    fields: FieldsFileOpt = None,
) -> None:
    """Import estates (小区) polygons (OSM XML: landuse=residential)."""
    from gridsvc.services.imports import import_estates as run

    mapping = _mapping(field, fields)
    result = _read(path, datum, layer, encoding, osm_filter={"landuse": "residential"})
    _run_import(lambda s: run(s, result, source=source or path.stem, fields=mapping), commit)


@import_app.command("communities")
def import_communities(
    path: FileArg,
    street: Annotated[str, typer.Option(help="code of the street (街道) they belong to")],
    street_name: Annotated[
        str | None, typer.Option(help="create the street with this name")
    ] = None,
    district: Annotated[str | None, typer.Option(help="district code for a new street")] = None,
    district_name: Annotated[
        str | None, typer.Option(help="district name for a new street")
    ] = None,
    datum: DatumOpt = Datum.WGS84,
    commit: CommitOpt = False,
    layer: LayerOpt = None,
    encoding: EncodingOpt = None,
    field: FieldOpt = None,
    fields: FieldsFileOpt = None,
    allow_move: AllowMoveOpt = False,
    show_moves: ShowMovesOpt = False,
) -> None:
    """Import community (社区) polygons of a street; the name comes from name/名称/district/…
    (or --field name=列名), the code from code/编码/… (else street code + sequence).

    Communities that overlap each other or an existing one are refused."""
    from gridsvc.services.imports import ensure_street
    from gridsvc.services.imports import import_communities as run
    from gridsvc.settings import get_settings

    mapping = _mapping(field, fields)
    result = _read(path, datum, layer, encoding)

    def work(session):  # type: ignore[no-untyped-def]
        street_id = ensure_street(
            session,
            street_code=street,
            street_name=street_name,
            district_code=district,
            district_name=district_name,
        )
        return run(
            session,
            result,
            street_id=street_id,
            street_code=street,
            source=path.stem,
            fields=mapping,
            overlap_tolerance_m2=get_settings().geo.overlap_tolerance_m2,
        )

    _run_import(work, commit, allow_move=allow_move, show_moves=show_moves)


@import_app.command("cells")
def import_cells(
    path: FileArg,
    community: Annotated[
        str | None, typer.Option(help="community code (default: by location)")
    ] = None,
    kind: Annotated[str, typer.Option(help="general, dedicated or micro")] = "general",
    datum: DatumOpt = Datum.WGS84,
    commit: CommitOpt = False,
    layer: LayerOpt = None,
    encoding: EncodingOpt = None,
    field: FieldOpt = None,
    fields: FieldsFileOpt = None,
    allow_move: AllowMoveOpt = False,
    show_moves: ShowMovesOpt = False,
) -> None:
    """Import cell (网格) polygons and assign every building to the cell holding most of it;
    cells that overlap each other or a current cell of the same kind are refused."""
    from gridsvc.services.imports import import_cells as run
    from gridsvc.settings import get_settings

    mapping = _mapping(field, fields)
    result = _read(path, datum, layer, encoding)
    _run_import(
        lambda s: run(
            s,
            result,
            source=path.stem,
            community_code=community,
            kind=kind,
            changed_by="cli",
            fields=mapping,
            overlap_tolerance_m2=get_settings().geo.overlap_tolerance_m2,
        ),
        commit,
        allow_move=allow_move,
        show_moves=show_moves,
    )


@import_app.command("roads")
def import_roads(
    path: FileArg,
    datum: DatumOpt = Datum.WGS84,
    commit: CommitOpt = False,
    layer: LayerOpt = None,
    encoding: EncodingOpt = None,
    source: SourceOpt = None,
    field: FieldOpt = None,
    fields: FieldsFileOpt = None,
) -> None:
    """Import road centre lines (OSM XML: every way tagged highway); proposals follow roads.

    The road class comes from highway / kind_detail+kind (Tilezen) / class (Mapbox,
    OpenMapTiles) / 道路等级, or --field road_class=列名; bridges and tunnels from
    bridge/tunnel, is_bridge/is_tunnel, brunnel or structure."""
    from gridsvc.services.imports import import_roads as run
    from gridsvc.settings import get_settings

    mapping = _mapping(field, fields)
    result = _read(path, datum, layer, encoding, osm_filter={"highway": None}, kind="line")
    name = source or ("osm" if path.suffix in (".osm", ".xml") else path.stem)
    share = get_settings().geo.unclassified_roads_max_share
    _run_import(
        lambda s: run(s, result, source=name, fields=mapping, unclassified_max_share=share),
        commit,
    )


@import_app.command("water")
def import_water(
    path: FileArg,
    datum: DatumOpt = Datum.WGS84,
    commit: CommitOpt = False,
    layer: LayerOpt = None,
    encoding: EncodingOpt = None,
    source: SourceOpt = None,
    all_water: Annotated[
        bool, typer.Option("--all-water", help="every polygon of the file is water (no tags)")
    ] = False,
) -> None:
    """Import water areas (OSM natural=water, waterway=riverbank …, or with --all-water a
    layer of water polygons); proposed cells never reach across them."""
    from gridsvc.services.water import import_water as run

    result = _read(path, datum, layer, encoding, kind="polygon")
    name = source or ("osm-water" if path.suffix in (".osm", ".xml") else path.stem)
    _run_import(lambda s: run(s, result, source=name, all_water=all_water), commit)


@import_app.command("incidents")
def import_incidents(
    path: FileArg,
    datum: DatumOpt = Datum.WGS84,
    commit: CommitOpt = False,
    layer: LayerOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Import incidents from points: CSV/XLSX with 经度/纬度 (lon/lat) columns, or any point file.

    Columns: 类别 (category), 描述 (description), 上报时间 (reported_at), 地址 (address).
    """
    from gridsvc.services.imports import import_incidents as run

    result = _read(path, datum, layer, encoding, kind="point")
    _run_import(lambda s: run(s, result, source=path.stem), commit)
