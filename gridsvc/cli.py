"""The `gridsvc` command: serve, manage the embedded database, import data, manage users."""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

# Only light modules at the top: `gridsvc --help` and the small commands must start fast, so
# sqlalchemy, geopandas, shapely, pandas, pyproj, folium, matplotlib, fastapi and uvicorn are
# imported inside the commands that use them (tests/gridsvc/test_cli_startup.py checks it).
from geodata.datum import Datum
from gridsvc.errors import GridsvcError

if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy.orm import Session

app = typer.Typer(
    help="gridsvc — 网格化管理 service: cells, buildings, households, incidents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="Manage the database (the embedded PostGIS cluster by default).", no_args_is_help=True
)
import_app = typer.Typer(
    help="Import geodata. Dry run by default: reports what it would do; --commit writes.",
    no_args_is_help=True,
)
users_app = typer.Typer(help="Manage sign-in users.", no_args_is_help=True)
cells_app = typer.Typer(help="Work with cells (网格).", no_args_is_help=True)
demo_app = typer.Typer(help="Generated demo data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(users_app, name="users")
app.add_typer(cells_app, name="cells")
app.add_typer(demo_app, name="demo")
cluster_app = typer.Typer(
    help="A local HA cluster: etcd + 3 Patroni/PostgreSQL members + PgBouncer (Debian packages).",
    no_args_is_help=True,
)
app.add_typer(cluster_app, name="cluster")

console = Console()
err = Console(stderr=True)


def _setup_logging() -> None:
    from gridsvc.settings import get_settings

    logging.basicConfig(
        level=get_settings().app.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


@contextlib.contextmanager
def _session() -> Iterator[Session]:
    """The database ready (embedded cluster started, migrated) and a session on it."""
    from sqlalchemy.orm import Session

    from gridsvc.bootstrap import prepare_database
    from gridsvc.db.engine import get_engine

    try:
        prepare_database()
    except GridsvcError as exc:
        _fail(exc.detail)
    with Session(get_engine()) as session:
        from gridsvc.services import audit

        audit.set_actor(session, f"cli:{getpass.getuser()}")
        yield session


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _principal(session: Session, username: str | None = None):  # type: ignore[no-untyped-def]
    """Who a command acts as: a named user (their scope and masking apply, and the audit log
    names them), or the operator with admin rights (the command line runs on the server)."""
    from sqlalchemy import select

    from gridsvc.auth.principal import Principal
    from gridsvc.models import User
    from gridsvc.services.principals import principal_for

    if username is None:
        return Principal(id=0, username="cli", role="admin")
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        _fail(f"no active user {username!r}")
    from gridsvc.services import audit

    audit.set_actor(session, f"cli:{getpass.getuser()} as {username}")
    return principal_for(session, user)


@app.callback()
def _main() -> None:
    """Configure logging before any command (the CLI is an edge of the program)."""
    _setup_logging()


# -- serve ----------------------------------------------------------------------------------
def uvicorn_options(host: str, port: int) -> dict[str, object]:
    """uvicorn's options from the settings. X-Forwarded-For/-Proto are believed only from the
    proxies in GRIDSVC_FORWARDED_ALLOW_IPS (uvicorn alone would trust 127.0.0.1, so anyone
    behind a local proxy could choose their address for the sign-in limits)."""
    from gridsvc.settings import get_settings

    app_settings = get_settings().app
    proxies = app_settings.forwarded_allow_ips.strip()
    return {
        "host": host,
        "port": port,
        "log_level": app_settings.log_level.lower(),
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
    }


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Start the database if needed, migrate, load the demo (development), and serve HTTP."""
    import uvicorn
    from sqlalchemy.orm import Session

    from gridsvc.bootstrap import ensure_admin, ensure_demo, prepare_database
    from gridsvc.db.engine import get_engine
    from gridsvc.settings import get_settings

    settings = get_settings()
    host = host or settings.app.host
    port = port or settings.app.port
    try:
        started = prepare_database()
    except GridsvcError as exc:
        _fail(exc.detail)
    try:
        with Session(get_engine()) as session:
            from gridsvc.services import audit

            audit.set_actor(session, "system:start-up")  # the first admin and the demo
            admin = ensure_admin(session)
            demo_logins = ensure_demo(session, say=console.print)
        console.rule("[bold]gridsvc")
        console.print(f"serving on [bold]http://{host}:{port}[/]  (API docs: /docs)")
        if admin:
            console.print(f"admin login: [bold]{admin[0]}[/] / [bold]{admin[1]}[/]")
        for username, password, what in demo_logins:
            console.print(f"demo login:  {username} / {password}  ({what})")
        options = uvicorn_options(host, port)
        if workers > 1:
            uvicorn.run("gridsvc.main:create_app", factory=True, workers=workers, **options)
        else:
            from gridsvc.main import create_app

            uvicorn.run(create_app(), **options)
    finally:
        if started:
            from gridsvc.localdb import embedded_cluster

            get_engine().dispose()
            embedded_cluster().stop()
            console.print("embedded database stopped")


# -- db -------------------------------------------------------------------------------------
def _embedded():  # type: ignore[no-untyped-def]
    from gridsvc.localdb import embedded_cluster
    from gridsvc.settings import get_settings

    if get_settings().db.database_url:
        _fail("GRIDSVC_DATABASE_URL is set: the embedded cluster is not in use")
    return embedded_cluster()


@db_app.command("up")
def db_up() -> None:
    """Create (first time) and start the embedded PostGIS cluster, and migrate it."""
    try:
        cluster = _embedded()
        started = cluster.start()
        cluster.ensure_database()
        from gridsvc.db import migrate

        migrate.upgrade(cluster.url())
    except GridsvcError as exc:
        _fail(exc.detail)
    console.print(
        ("started" if started else "already running") + f" on port {cluster.credentials().port}"
    )


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster (fast shutdown)."""
    try:
        stopped = _embedded().stop()
    except GridsvcError as exc:
        _fail(exc.detail)
    console.print("stopped" if stopped else "was not running")


@db_app.command("status")
def db_status() -> None:
    """Show the embedded cluster's folder, state and port, and the schema revision."""
    from gridsvc.db import migrate
    from gridsvc.settings import get_settings

    settings = get_settings()
    table = Table(show_header=False)
    if settings.db.database_url:
        table.add_row("database", "external (GRIDSVC_DATABASE_URL)")
        url = settings.db.database_url
    else:
        cluster = _embedded()
        info = cluster.status()
        for key, value in info.items():
            table.add_row(key, str(value))
        url = cluster.url() if info.get("running") else None
    if url:
        try:
            table.add_row("schema revision", str(migrate.current_revision(url)))
        except Exception as exc:  # the database may not exist yet
            table.add_row("schema revision", f"unknown ({type(exc).__name__})")
    table.add_row("latest revision", str(migrate.head_revision()))
    console.print(table)


def _local_cluster(folder: Path | None, base_port: int) -> object:
    from gridsvc.cluster import LocalCluster
    from gridsvc.settings import get_settings

    return LocalCluster(folder or get_settings().app.var_dir / "cluster", base_port)


ClusterFolder = Annotated[
    Path | None, typer.Option("--folder", help="where data and logs live (var/cluster)")
]
ClusterPort = Annotated[int, typer.Option("--base-port", help="first of the loopback ports")]


@cluster_app.command("up")
def cluster_up(folder: ClusterFolder = None, base_port: ClusterPort = 25400) -> None:
    """Start etcd, the three Patroni members and PgBouncer; create and migrate the database."""
    from gridsvc.cluster import ClusterError, LocalCluster

    cluster = _local_cluster(folder, base_port)
    assert isinstance(cluster, LocalCluster)
    try:
        leader = cluster.up()
    except ClusterError as exc:
        _fail(f"集群启动失败：{exc}（日志见 {cluster.root}）")
    console.print(f"集群已就绪：主库为成员 pg{leader}（端口 {cluster.pg_port(leader)}）")
    typer.echo(f"GRIDSVC_DATABASE_URL={cluster.primary_url()!r}")
    replicas = " ".join(cluster.member_url(i) for i in range(3))
    typer.echo(f"GRIDSVC_REPLICA_URLS={replicas!r}")


@cluster_app.command("down")
def cluster_down(
    folder: ClusterFolder = None,
    base_port: ClusterPort = 25400,
    delete: Annotated[bool, typer.Option("--delete", help="also delete the data")] = False,
) -> None:
    """Stop PgBouncer, Patroni (and its PostgreSQL servers) and etcd."""
    from gridsvc.cluster import LocalCluster

    cluster = _local_cluster(folder, base_port)
    assert isinstance(cluster, LocalCluster)
    cluster.down(delete=delete)
    console.print("集群已停止" + ("，数据已删除" if delete else ""))


@cluster_app.command("status")
def cluster_status(folder: ClusterFolder = None, base_port: ClusterPort = 25400) -> None:
    """Show each member's role, state and lag, the processes, and the URLs for gridsvc."""
    from gridsvc.cluster import LocalCluster

    cluster = _local_cluster(folder, base_port)
    assert isinstance(cluster, LocalCluster)
    info = cluster.status()
    table = Table("成员", "角色", "状态", "端口", "延迟 (MB)")
    for m in info["members"]:
        table.add_row(
            str(m.get("name")),
            str(m.get("role")),
            str(m.get("state")),
            str(m.get("port")),
            str(m.get("lag", "")),
        )
    console.print(table)
    if not info["members"]:
        console.print("没有成员在运行")
    console.print(json.dumps(info["processes"], ensure_ascii=False))
    for name in ("GRIDSVC_DATABASE_URL", "GRIDSVC_REPLICA_URLS"):
        if info[name]:
            typer.echo(f"{name}={info[name]!r}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply migrations (starting the embedded cluster if needed)."""
    from gridsvc.db import migrate
    from gridsvc.db.engine import database_url

    try:
        migrate.upgrade(database_url(), revision)
    except GridsvcError as exc:
        _fail(exc.detail)
    console.print(f"database at revision {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="target revision")]) -> None:
    """Revert migrations down to a revision ('base' removes every table)."""
    from gridsvc.db import migrate
    from gridsvc.db.engine import database_url

    migrate.downgrade(database_url(), revision)
    console.print(f"database at revision {revision}")


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
        _fail(str(exc))
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
            _fail(str(exc))


def _run_import(  # type: ignore[no-untyped-def]
    work, commit: bool, *, allow_move: bool = False, show_moves: bool = False
) -> None:
    """Run an import in one transaction; commit or roll back; print the summary, the columns
    used, the warnings, the codes created and what moves."""
    from geodata.errors import GeodataError
    from gridsvc.services.imports import run_in_savepoint

    try:
        with _session() as session:
            summary = run_in_savepoint(
                session, lambda: work(session), commit=commit, allow_move=allow_move
            )
    except GridsvcError as exc:
        _fail(exc.detail)
    except GeodataError as exc:
        _fail(str(exc))
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


# -- cells ----------------------------------------------------------------------------------
@cells_app.command("assign")
def cells_assign(
    community: Annotated[str | None, typer.Option(help="only this community")] = None,
) -> None:
    """Re-assign buildings to cells (largest share of footprint), in SQL."""
    from gridsvc.repositories.areas import get_community
    from gridsvc.services.assignment import assign_buildings_to_cells

    with _session() as session:
        try:
            cid = get_community(session, community).id if community else None
        except GridsvcError as exc:
            _fail(exc.detail)
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

    with _session() as session:
        try:
            report = validate_community(
                session,
                get_community(session, community),
                tolerance_m=tolerance_m,
                sliver_m2=sliver_m2,
            )
        except GridsvcError as exc:
            _fail(exc.detail)
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
        _fail("--commit needs --reason (it goes into the audit log)")
    with _session() as session:
        try:
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
        except GridsvcError as exc:
            _fail(exc.detail)


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

    with _session() as session:
        try:
            info = versions(session, get_cell(session, cell).id)
        except GridsvcError as exc:
            _fail(exc.detail)
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


# -- demo -----------------------------------------------------------------------------------
@demo_app.command("load")
def demo_load(
    seed: Annotated[int, typer.Option(help="random seed (same seed, same street)")] = 42,
    communities: Annotated[int, typer.Option(help="communities in the street")] = 3,
    street_code: Annotated[str, typer.Option(help="9-digit street code")] = "320102001",
) -> None:
    """Generate a demo street and load it."""
    from geodata.synth import SynthConfig, generate_street
    from gridsvc.services.demo import load_street

    with console.status("generating …"):
        street = generate_street(
            SynthConfig(
                seed=seed,
                communities=communities,
                street_code=street_code,
                district_code=street_code[:6],
            )
        )
    with _session() as session:
        try:
            loaded = load_street(session, street, step=lambda s: console.print(f"loading {s} …"))
        except GridsvcError as exc:
            _fail(exc.detail)
        session.commit()
    console.print(loaded)


# -- users ----------------------------------------------------------------------------------
@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="sign-in name")],
    role: Annotated[
        str,
        typer.Option(help="admin, street_staff, community_staff, leader, grid_worker or viewer"),
    ],
    street: Annotated[str | None, typer.Option(help="scope: street code")] = None,
    community: Annotated[str | None, typer.Option(help="scope: community code")] = None,
    cell: Annotated[str | None, typer.Option(help="scope: cell code")] = None,
    password: Annotated[
        str | None, typer.Option(help="password (generated and printed if omitted)")
    ] = None,
    full_name: Annotated[str | None, typer.Option(help="display name")] = None,
    person: Annotated[
        int | None,
        typer.Option(
            help="the registered person this account belongs to (a 格长's or 网格员's scope then "
            "follows their active role; default: the cell's one holder of the role)"
        ),
    ] = None,
) -> None:
    """Create a user with a role and a scope (a 格长 gets --cell, street staff --street …)."""
    from gridsvc.services.users import ScopeSpec, create_user

    given = [(k, v) for k, v in (("street", street), ("community", community), ("cell", cell)) if v]
    if len(given) > 1:
        _fail("give at most one of --street, --community, --cell")
    scope = ScopeSpec(*given[0]) if given else ScopeSpec()
    generated = password is None
    password = password or secrets.token_urlsafe(9)
    with _session() as session:
        try:
            create_user(
                session,
                username=username,
                password=password,
                role=role,
                scope=scope,
                full_name=full_name,
                person_id=person,
            )
            session.commit()
        except GridsvcError as exc:
            _fail(exc.detail)
    console.print(
        f"created {username} ({role}" + (f", {scope.kind} {scope.code}" if scope.kind else "") + ")"
    )
    if generated:
        console.print(f"password: {password}")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List users with their role and scope."""
    from sqlalchemy import select

    from gridsvc.models import User

    with _session() as session:
        users = session.scalars(select(User).order_by(User.username)).all()
        rows = [
            {
                "username": u.username,
                "role": u.role,
                "street_id": u.street_id,
                "community_id": u.community_id,
                "cell_id": u.cell_id,
                "active": u.is_active,
            }
            for u in users
        ]
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table("user", "role", "scope", "active")
    for r in rows:
        scope = next(
            (f"{k[:-3]} #{r[k]}" for k in ("street_id", "community_id", "cell_id") if r[k]), "all"
        )
        table.add_row(r["username"], r["role"], scope, "yes" if r["active"] else "no")
    console.print(table)


def _user_change(what: str, change):  # type: ignore[no-untyped-def]
    """Run one change to a user in a session and report it (or fail with the reason)."""
    with _session() as session:
        try:
            result = change(session)
        except GridsvcError as exc:
            _fail(exc.detail)
    console.print(what)
    return result


@users_app.command("password")
def users_password(
    username: Annotated[str, typer.Argument(help="sign-in name")],
    password: Annotated[
        str | None, typer.Option(help="new password (generated and printed if omitted)")
    ] = None,
) -> None:
    """Set a user's password; every token they hold stops working."""
    from gridsvc.services.users import change_password

    generated = password is None
    password = password or secrets.token_urlsafe(9)
    _user_change(
        f"password of {username} changed; their sessions are signed out",
        lambda session: change_password(session, username, password),
    )
    if generated:
        console.print(f"password: {password}")


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="sign-in name")]) -> None:
    """Disable a user: they cannot sign in and every token they hold stops working."""
    from gridsvc.services.users import set_active

    _user_change(
        f"disabled {username}; their sessions are signed out",
        lambda session: set_active(session, username, False),
    )


@users_app.command("enable")
def users_enable(username: Annotated[str, typer.Argument(help="sign-in name")]) -> None:
    """Enable a disabled user again (they sign in anew)."""
    from gridsvc.services.users import set_active

    _user_change(f"enabled {username}", lambda session: set_active(session, username, True))


@users_app.command("delete")
def users_delete(username: Annotated[str, typer.Argument(help="sign-in name")]) -> None:
    """Delete a user; their tokens die and never pass for a new user of the same name."""
    from gridsvc.services.users import delete_user

    _user_change(f"deleted {username}", lambda session: delete_user(session, username))


@users_app.command("unlock")
def users_unlock(username: Annotated[str, typer.Argument(help="sign-in name")]) -> None:
    """Clear the sign-in back-off of a user name (from every address)."""
    from gridsvc.services.users import unlock

    cleared = _user_change(
        f"cleared the sign-in back-off of {username}", lambda session: unlock(session, username)
    )
    console.print(f"{cleared} address(es) may try again at once")


@users_app.command("token")
def users_token(
    username: Annotated[str, typer.Argument(help="sign-in name")],
    days: Annotated[int, typer.Option(help="days the token stays valid")] = 90,
) -> None:
    """Mint a long-lived bearer token for a desktop client (QGIS, ogr2ogr): send it as the
    header `Authorization: Bearer <token>`. Signing out, a new password or disabling the user
    revokes it."""
    from gridsvc.services.users import desktop_token

    token = _user_change(
        f"{username} 的令牌（{days} 天内有效；请求头 Authorization: Bearer <令牌>）：",
        lambda session: desktop_token(session, username, days),
    )
    sys.stdout.write(token + "\n")


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

    _setup_logging()
    if format not in exports.EXPORT_FORMATS:
        _fail(f"unknown format {format!r}; choose from {', '.join(exports.EXPORT_FORMATS)}", 2)
    with _session() as session:
        try:
            principal = _principal(session, as_user)
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
            _fail(exc.detail, 2)
    target = out or Path(result.filename)
    target.write_bytes(result.content)
    console.print(f"wrote {target} ({len(result.content) / 1024:.0f} KiB, {result.media_type})")


# -- people, duties, coverage, 责任网络图 (issue 5) -------------------------------------------------
people_app = typer.Typer(
    help="People and duties (定网格、定职责): rosters, assignments, duties, coverage, 责任网络图.",
    no_args_is_help=True,
)
app.add_typer(people_app, name="people")


@people_app.command("import")
def people_import(
    roster: Annotated[
        Path,
        typer.Argument(
            help="CSV or XLSX roster (姓名, 电话, 身份证号, 角色, 网格编码, 楼栋, 开始日期 …)"
        ),
    ],
    commit: Annotated[bool, typer.Option("--commit", help="write the good rows")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Import people and assignments from a roster. Dry run by default; exit code 2 when rows
    have errors (listed with row number, column and message)."""
    from gridsvc.services.roster import import_roster

    with _session() as session:
        try:
            report = import_roster(session, _principal(session), roster, commit=commit)
        except GridsvcError as exc:
            _fail(exc.detail)
    data = report.as_dict()
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    else:
        console.print(
            f"{data['rows']} rows: {data['good_rows']} good, {data['bad_rows']} with errors; "
            f"{data['people_created']} people new, {data['people_matched']} matched, "
            f"{data['assignments']} assignments — "
            + (
                "committed"
                if commit
                else "dry run (nothing written; --commit writes the good rows)"
            )
        )
        if data["errors"]:
            table = Table("row", "column", "problem")
            for e in data["errors"]:
                table.add_row(str(e["row"]), e["column"], e["message"])
            console.print(table)
    if data["errors"]:
        raise typer.Exit(2)


@people_app.command("assign")
def people_assign(
    person_id: Annotated[int, typer.Option(help="the person's id")],
    role: Annotated[
        str, typer.Option(help="leader, grid_worker, building_captain … or 格长, 网格员 …")
    ],
    cell: Annotated[str | None, typer.Option(help="cell code")] = None,
    community: Annotated[str | None, typer.Option(help="community code")] = None,
    sector: Annotated[str | None, typer.Option(help="sector code")] = None,
    building: Annotated[str | None, typer.Option(help="building id or name")] = None,
    household: Annotated[int | None, typer.Option(help="household id")] = None,
    employment: Annotated[str | None, typer.Option(help="full_time / part_time (网格员)")] = None,
    starts_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today)")] = None,
) -> None:
    """Give a person a role (refused when the cell already has an active 格长)."""
    from gridsvc.services import people
    from gridsvc.services.roster import parse_date

    with _session() as session:
        try:
            target = people.resolve_target(
                session,
                role,
                community=community,
                sector=sector,
                cell=cell,
                building=building,
                household=household,
            )
            row = people.assign(
                session,
                _principal(session),
                person_id=person_id,
                role=role,
                target=target,
                starts_on=parse_date(starts_on),
                employment=employment,
            )
            session.commit()
        except GridsvcError as exc:
            _fail(exc.detail)
        console.print(f"assignment #{row.id}: person #{person_id} is {role} of {target.label}")


@people_app.command("end")
def people_end(
    assignment_id: Annotated[int, typer.Argument(help="assignment id")],
    on: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today)")] = None,
) -> None:
    """End an assignment (kept in the history)."""
    from gridsvc.services import people
    from gridsvc.services.roster import parse_date

    with _session() as session:
        try:
            row = people.end_assignment(session, _principal(session), assignment_id, parse_date(on))
        except GridsvcError as exc:
            _fail(exc.detail)
        console.print(f"assignment #{row.id} ends on {row.ends_on}")


@people_app.command("list")
def people_list(
    cell: Annotated[str, typer.Argument(help="cell code")],
    history: Annotated[bool, typer.Option("--history", help="ended assignments too")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Who holds which role in a cell and its buildings."""
    from gridsvc.repositories.cells import get_cell
    from gridsvc.services import people

    with _session() as session:
        try:
            rows = people.assignments_of_cell(session, get_cell(session, cell).id, history=history)
        except GridsvcError as exc:
            _fail(exc.detail)
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, default=str) + "\n")
        return
    table = Table("id", "role", "person", "building", "from", "until")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["role_label"],
            r["person"],
            r["building"] or "",
            str(r["starts_on"]),
            str(r["ends_on"] or ""),
        )
    console.print(table)


@people_app.command("duties")
def people_duties(
    level: Annotated[int | None, typer.Option(help="level 1–4 to change")] = None,
    text_: Annotated[str | None, typer.Option("--text", help="the new duty text")] = None,
) -> None:
    """Show the duties of the four levels, or change one (--level N --text …)."""
    from gridsvc.services import people

    with _session() as session:
        try:
            if level is not None:
                if not text_:
                    _fail("give --text with --level")
                people.set_level_duty(session, level, text_ or "", user="cli")
            rows = people.level_duties(session)
        except GridsvcError as exc:
            _fail(exc.detail)
    for r in rows:
        console.print(f"[bold]{r['title']}[/]: {r['duties']}")


@people_app.command("coverage")
def people_coverage(
    street: Annotated[str, typer.Argument(help="street code")],
    community: Annotated[str | None, typer.Option(help="only this community")] = None,
    as_of: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today)")] = None,
    distance_m: Annotated[float | None, typer.Option(help="walking distance in metres")] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="write CSV (UTF-8 with BOM)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON report")] = False,
) -> None:
    """Coverage per cell, community and street; every figure names its denominator."""
    from gridsvc.services.coverage import FIGURES, coverage, to_csv
    from gridsvc.services.roster import parse_date

    with _session() as session:
        try:
            report = coverage(
                session,
                _principal(session),
                street_code=None if community else street,
                community_code=community,
                as_of=parse_date(as_of),
                distance_m=distance_m,
            )
        except GridsvcError as exc:
            _fail(exc.detail)
    if csv_out is not None:
        csv_out.write_bytes(to_csv(report))
        console.print(f"wrote {csv_out}")
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, default=str) + "\n")
        return
    keys = (
        "linked_share",
        "visited_share",
        "near_volunteer_share",
        "volunteers_per_100_households",
    )
    table = Table("level", "code", "households", *(s.label for s in FIGURES if s.key in keys))
    for r in report["rows"]:
        if r["level"] == "cell" and community is None:
            continue
        table.add_row(
            r["level"],
            r["cell_code"] or r["community_code"] or report["street"]["code"],
            str(r["counts"]["households_registered"]),
            *(
                "—" if r["figures"][k]["value"] is None else str(r["figures"][k]["value"])
                for k in keys
            ),
        )
    console.print(table)


@people_app.command("chart")
def people_chart(
    street: Annotated[str, typer.Argument(help="street code")],
    output: Annotated[Path, typer.Option("-o", "--output", help=".svg, .png or .json")],
    on: Annotated[str | None, typer.Option(help="people active on YYYY-MM-DD")] = None,
) -> None:
    """Draw the 责任网络图 (street → community → sector → cell → people) to a file."""
    from gridsvc.services import people
    from gridsvc.services.roster import parse_date

    suffix = output.suffix.lower().lstrip(".")
    if suffix not in ("svg", "png", "json"):
        _fail("the output must end in .svg, .png or .json")
    with _session() as session:
        try:
            tree = people.responsibility_tree(
                session, _principal(session), street, on=parse_date(on)
            )
        except GridsvcError as exc:
            _fail(exc.detail)
    if suffix == "json":
        output.write_text(json.dumps(tree, ensure_ascii=False, indent=1, default=str))
    else:
        from maps.charts import responsibility_chart

        output.write_bytes(responsibility_chart(tree, fmt=suffix))
    console.print(f"wrote {output}")


@people_app.command("sector")
def people_sector(
    community: Annotated[str, typer.Argument(help="community code")],
    name: Annotated[str, typer.Argument(help="sector name, e.g. 东片")],
    cells: Annotated[list[str] | None, typer.Option("--cell", help="a cell code (repeat)")] = None,
    level: Annotated[int, typer.Option(help="2 (片区) or 3 (党支部)")] = 2,
    parent: Annotated[str | None, typer.Option(help="level-2 sector code (for level 3)")] = None,
) -> None:
    """Create a sector (片区 or 党支部 area) of a community and put cells in it."""
    from gridsvc.services import people

    with _session() as session:
        try:
            sector = people.create_sector(
                session,
                _principal(session),
                community=community,
                name=name,
                level=level,
                parent=parent,
                cells=list(cells or []),
            )
        except GridsvcError as exc:
            _fail(exc.detail)
    console.print(f"sector {sector['code']} ({sector['name']}): {', '.join(sector['cells'])}")


@people_app.command("record")
def people_record(
    what: Annotated[str, typer.Argument(help="visit, link, post or organisation")],
    person_id: Annotated[int | None, typer.Option(help="visitor / party member")] = None,
    household: Annotated[int | None, typer.Option(help="household id (visit, link)")] = None,
    on: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today)")] = None,
    kind: Annotated[
        str | None, typer.Option(help="post kind (宣教 …) or organisation kind")
    ] = None,
    community: Annotated[str | None, typer.Option(help="community code (organisation)")] = None,
    name: Annotated[str | None, typer.Option(help="organisation name / post title")] = None,
    contact: Annotated[str | None, typer.Option(help="organisation contact name")] = None,
    phone: Annotated[str | None, typer.Option(help="organisation contact phone")] = None,
    note: Annotated[str | None, typer.Option(help="visit note")] = None,
) -> None:
    """Record a 走访 visit, a 联系户 link, a 公益岗位 claim or a 辖区单位."""

    from gridsvc.services import people
    from gridsvc.services.clock import local_today
    from gridsvc.services.roster import parse_date

    day = parse_date(on) or local_today()
    with _session() as session:
        admin = _principal(session)
        try:
            if what == "visit":
                if household is None:
                    _fail("a visit needs --household")
                result = people.record_visit(
                    session,
                    admin,
                    household_id=household or 0,
                    visited_on=day,
                    person_id=person_id,
                    note=note,
                )
            elif what == "link":
                if household is None or person_id is None:
                    _fail("a link needs --person-id and --household")
                result = people.link_household(
                    session,
                    admin,
                    person_id=person_id or 0,
                    household_id=household or 0,
                    starts_on=day,
                )
            elif what == "post":
                if person_id is None or not kind:
                    _fail("a post needs --person-id and --kind")
                result = people.claim_post(
                    session,
                    admin,
                    person_id=person_id or 0,
                    kind=kind or "",
                    title=name,
                    starts_on=day,
                )
            elif what == "organisation":
                if not community or not name:
                    _fail("an organisation needs --community and --name")
                result = people.create_organisation(
                    session,
                    admin,
                    community=community or "",
                    name=name or "",
                    kind=kind or "other",
                    contact_name=contact,
                    contact_phone=phone,
                )
            else:
                _fail("record one of: visit, link, post, organisation")
        except GridsvcError as exc:
            _fail(exc.detail)
    sys.stdout.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")


# -- incidents --------------------------------------------------------------------------------
incidents_app = typer.Typer(
    help="Incidents (事件): list, show, move through the workflow, statistics, Open311 keys.",
    no_args_is_help=True,
)
open311_app = typer.Typer(help="Open311 GeoReport v2.", no_args_is_help=True)
open311_keys_app = typer.Typer(
    help="API keys of Open311 clients (stored hashed).", no_args_is_help=True
)
app.add_typer(incidents_app, name="incidents")
incidents_app.add_typer(open311_app, name="open311")
open311_app.add_typer(open311_keys_app, name="keys")


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


@incidents_app.command("list")
def incidents_list(
    status: Annotated[str | None, typer.Option(help="states, comma-separated")] = None,
    community: Annotated[str | None, typer.Option(help="community code")] = None,
    cell: Annotated[str | None, typer.Option(help="cell code")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="only overdue cases")] = False,
    as_user: Annotated[str | None, typer.Option("--as", help="see what this user sees")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List incidents, newest first, with their state, cell and deadlines."""
    from gridsvc.repositories import areas as area_repo
    from gridsvc.repositories import cells as cell_repo
    from gridsvc.repositories import incidents as repo
    from gridsvc.services.clock import get_clock

    with _session() as session:
        try:
            f = repo.IncidentFilter(
                status=tuple(x for x in (status or "").split(",") if x),
                community_id=area_repo.get_community(session, community).id if community else None,
                cell_id=cell_repo.get_cell(session, cell).id if cell else None,
                overdue=True if overdue else None,
            )
            items, total = repo.incident_list(
                session,
                _principal(session, as_user),
                f,
                now=get_clock().now(),
                limit=limit,
                offset=0,
            )
        except GridsvcError as exc:
            _fail(exc.detail)
    if as_json:
        _print_json({"items": items, "numberMatched": total})
        return
    table = Table(
        "id", "状态", "类别", "网格/队列", "上报", "结案时限", "超期", title=f"{total} incidents"
    )
    for i in items:
        table.add_row(
            str(i["id"]),
            i["status"],
            i["category_label"],
            i["handling_cell_code"] or i["queue"],
            i["reported_at"][:16],
            (i["close_due_at"] or "")[:16],
            "超期" if i["overdue"] else "",
        )
    console.print(table)


@incidents_app.command("show")
def incidents_show(
    incident_id: Annotated[int, typer.Argument(help="incident id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One incident with its workflow record."""
    from gridsvc.services import incidents as svc
    from gridsvc.services.clock import get_clock

    with _session() as session:
        try:
            detail = svc.get_incident(
                session, _principal(session, None), incident_id, get_clock().now()
            )
        except GridsvcError as exc:
            _fail(exc.detail)
    if as_json:
        _print_json(detail)
        return
    console.print(
        f"[bold]#{detail['id']}[/] {detail['category_label']} — {detail['status']} "
        f"({detail['queue']} {detail['handling_cell_code'] or ''}), 格长 {detail['assignee'] or '—'}"
    )
    console.print(detail["description"] or "")
    for e in detail["events"]:
        console.print(
            f"  {e['at'][:19]}  {e['action']:<9} {e['from_status'] or '':>10} → {e['to_status']:<10} {e['actor']}  {e['note'] or ''}"
        )


@incidents_app.command("transition")
def incidents_transition(
    incident_id: Annotated[int, typer.Argument(help="incident id")],
    action: Annotated[
        str, typer.Argument(help="dispatch, handle, verify, close, return, escalate, park, resume")
    ],
    as_user: Annotated[str, typer.Option("--as", help="the user who acts (role and scope apply)")],
    note: Annotated[
        str | None, typer.Option(help="why (required to return, escalate, park)")
    ] = None,
    to_cell: Annotated[str | None, typer.Option(help="dispatch to this cell's team")] = None,
) -> None:
    """Move a case one step in the workflow, as a named user; exit code 3 on a conflict."""
    from gridsvc.errors import Conflict
    from gridsvc.services import incidents as svc
    from gridsvc.services.clock import get_clock

    with _session() as session:
        try:
            detail = svc.transition(
                session,
                _principal(session, as_user),
                incident_id,
                action,
                now=get_clock().now(),
                note=note,
                to_cell=to_cell,
            )
        except Conflict as exc:
            _fail(exc.detail, code=3)
        except GridsvcError as exc:
            _fail(exc.detail)
    console.print(f"#{incident_id} is now {detail['status']} (version {detail['version']})")


@incidents_app.command("stats")
def incidents_stats(
    by: Annotated[str, typer.Option(help="cell, community or street")] = "cell",
    period: Annotated[str, typer.Option(help="all, day, week, month, quarter, year")] = "month",
    street: Annotated[str | None, typer.Option(help="street code")] = None,
    community: Annotated[str | None, typer.Option(help="community code")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="write CSV here")] = None,
) -> None:
    """Closure rate, on-time closure rate (按期结案率), time to dispatch/close, overdue counts."""
    import csv

    from gridsvc.repositories import areas as area_repo
    from gridsvc.repositories import incidents as repo
    from gridsvc.services import incidents as svc
    from gridsvc.services.clock import get_clock

    with _session() as session:
        try:
            result = svc.stats(
                session,
                _principal(session, None),
                by=by,
                period=period,
                now=get_clock().now(),
                street_id=repo.street_id(session, street) if street else None,
                community_id=area_repo.get_community(session, community).id if community else None,
            )
        except GridsvcError as exc:
            _fail(exc.detail)
    rows = result["rows"]
    if csv_out is not None:
        with csv_out.open("w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else [by, "reported"])
            writer.writeheader()
            writer.writerows(rows)
        console.print(f"{len(rows)} rows written to {csv_out}")
        return
    if as_json:
        _print_json(result)
        return
    table = Table(
        by, "period", "上报", "结案", "结案率", "按期结案率", "超期", "派遣(分)", "结案(时)"
    )
    for r in rows:
        pct = lambda v: "—" if v is None else f"{v:.1%}"  # noqa: E731
        table.add_row(
            str(r[by]),
            str(r["period"] or "all"),
            str(r["reported"]),
            str(r["closed"]),
            pct(r["closure_rate"]),
            pct(r["on_time_closure_rate"]),
            str(r["overdue_open"]),
            str(r["avg_minutes_to_dispatch"] or "—"),
            str(r["avg_hours_to_close"] or "—"),
        )
    console.print(table)


@open311_keys_app.command("create")
def open311_key_create(
    name: Annotated[str, typer.Argument(help="the client, e.g. 市民通 app")],
    street: Annotated[str | None, typer.Option(help="read scope: street code")] = None,
    community: Annotated[str | None, typer.Option(help="read scope: community code")] = None,
    cell: Annotated[str | None, typer.Option(help="read scope: cell code")] = None,
) -> None:
    """Create an API key; it is shown once (only its hash is stored). With a scope the partner
    reads the full record of the cases in it; without one the key only submits."""
    from gridsvc.services.open311 import create_key
    from gridsvc.services.users import ScopeSpec

    given = [(k, v) for k, v in (("street", street), ("community", community), ("cell", cell)) if v]
    if len(given) > 1:
        _fail("give at most one of --street, --community, --cell")
    with _session() as session:
        try:
            key = create_key(session, name, ScopeSpec(*given[0]) if given else ScopeSpec())
        except GridsvcError as exc:
            _fail(exc.detail)
    err.print(f"API key for {name!r} (shown once, keep it safe):")
    sys.stdout.write(key + "\n")


@open311_keys_app.command("revoke")
def open311_key_revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key: it stops working at once."""
    from gridsvc.services.clock import get_clock
    from gridsvc.services.open311 import revoke_key

    with _session() as session:
        try:
            info = revoke_key(session, name, now=get_clock().now())
        except GridsvcError as exc:
            _fail(exc.detail)
    console.print(f"key {info.name!r} ({info.prefix}…) revoked at {info.revoked_at}")


@open311_keys_app.command("list")
def open311_key_list() -> None:
    """Every key (never the key itself): name, prefix, created, revoked."""
    from gridsvc.services.open311 import list_keys

    with _session() as session:
        keys = list_keys(session)
    table = Table("name", "prefix", "scope", "created", "revoked")
    for k in keys:
        table.add_row(
            k.name,
            k.prefix + "…",
            k.scope or "(submit only)",
            str(k.created_at)[:19],
            str(k.revoked_at or "")[:19],
        )
    console.print(table)


@open311_app.command("publish")
def open311_publish(
    category: Annotated[str, typer.Argument(help="category code or label, e.g. sanitation")],
    public: Annotated[
        bool, typer.Option("--public/--private", help="show its cases in the public feed or not")
    ],
) -> None:
    """Whether a category's cases appear in the anonymous Open311 feed (coarsened, no free
    text). 矛盾纠纷, 社情民意 and cases about households or persons should stay private."""
    from gridsvc.services.incidents import set_category_public

    with _session() as session:
        try:
            c = set_category_public(session, category, public)
        except GridsvcError as exc:
            _fail(exc.detail)
    state = "public" if c["public"] else "private"
    console.print(f"category {c['code']} ({c['label']}) is {state} in the Open311 feed")


def main() -> None:
    """Entry point of the `gridsvc` console script."""
    app()


if __name__ == "__main__":
    main()
