"""gridsvc db (the embedded PostGIS cluster, migrations) and gridsvc cluster (a local HA cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gridsvc.cli.common import app, console, fail

if TYPE_CHECKING:
    pass

db_app = typer.Typer(
    help="Manage the database (the embedded PostGIS cluster by default).", no_args_is_help=True
)
cluster_app = typer.Typer(
    help="A local HA cluster: etcd + 3 Patroni/PostgreSQL members + PgBouncer (Debian packages).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(cluster_app, name="cluster")


# -- db -------------------------------------------------------------------------------------
def _embedded():  # type: ignore[no-untyped-def]
    from gridsvc.localdb import embedded_cluster
    from gridsvc.settings import get_settings

    if get_settings().db.database_url:
        fail("GRIDSVC_DATABASE_URL is set: the embedded cluster is not in use")
    return embedded_cluster()


@db_app.command("up")
def db_up() -> None:
    """Create (first time) and start the embedded PostGIS cluster, and migrate it."""
    cluster = _embedded()
    started = cluster.start()
    cluster.ensure_database()
    from gridsvc.db import migrate

    migrate.upgrade(cluster.url())
    console.print(
        ("started" if started else "already running") + f" on port {cluster.credentials().port}"
    )


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster (fast shutdown)."""
    stopped = _embedded().stop()
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
        fail(f"集群启动失败：{exc}（日志见 {cluster.root}）")
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

    migrate.upgrade(database_url(), revision)
    console.print(f"database at revision {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="target revision")]) -> None:
    """Revert migrations down to a revision ('base' removes every table)."""
    from gridsvc.db import migrate
    from gridsvc.db.engine import database_url

    migrate.downgrade(database_url(), revision)
    console.print(f"database at revision {revision}")
