"""gridsvc users: sign-in accounts, passwords and desktop tokens."""

from __future__ import annotations

import json
import secrets
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gridsvc.cli.common import app, console, fail, open_session

if TYPE_CHECKING:
    pass

users_app = typer.Typer(help="Manage sign-in users.", no_args_is_help=True)
app.add_typer(users_app, name="users")


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
        fail("give at most one of --street, --community, --cell")
    scope = ScopeSpec(*given[0]) if given else ScopeSpec()
    generated = password is None
    password = password or secrets.token_urlsafe(9)
    with open_session() as session:
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

    with open_session() as session:
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
    with open_session() as session:
        result = change(session)
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
