"""gridsvc serve: the web service (uvicorn) on the configured address."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from gridsvc.cli.common import app, console

if TYPE_CHECKING:
    pass


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
    started = prepare_database()
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
