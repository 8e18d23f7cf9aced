"""gridsvc incidents: cases, their workflow, statistics and the Open311 feed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gridsvc.cli.common import acting_as, app, console, err, fail, open_session
from gridsvc.errors import GridsvcError

if TYPE_CHECKING:
    pass

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

    with open_session() as session:
        f = repo.IncidentFilter(
            status=tuple(x for x in (status or "").split(",") if x),
            community_id=area_repo.get_community(session, community).id if community else None,
            cell_id=cell_repo.get_cell(session, cell).id if cell else None,
            overdue=True if overdue else None,
        )
        items, total = repo.incident_list(
            session,
            acting_as(session, as_user),
            f,
            now=get_clock().now(),
            limit=limit,
            offset=0,
        )
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

    with open_session() as session:
        detail = svc.get_incident(session, acting_as(session, None), incident_id, get_clock().now())
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

    with open_session() as session:
        try:
            detail = svc.transition(
                session,
                acting_as(session, as_user),
                incident_id,
                action,
                now=get_clock().now(),
                note=note,
                to_cell=to_cell,
            )
        except Conflict as exc:
            fail(exc.detail, code=3)
        except GridsvcError as exc:
            fail(exc.detail)
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

    from gridsvc.services import incidents as svc
    from gridsvc.services.clock import get_clock

    with open_session() as session:
        result = svc.stats(
            session,
            acting_as(session, None),
            by=by,
            period=period,
            now=get_clock().now(),
            street=street,
            community=community,
        )
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
        fail("give at most one of --street, --community, --cell")
    with open_session() as session:
        key = create_key(session, name, ScopeSpec(*given[0]) if given else ScopeSpec())
    err.print(f"API key for {name!r} (shown once, keep it safe):")
    sys.stdout.write(key + "\n")


@open311_keys_app.command("revoke")
def open311_key_revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key: it stops working at once."""
    from gridsvc.services.clock import get_clock
    from gridsvc.services.open311 import revoke_key

    with open_session() as session:
        info = revoke_key(session, name, now=get_clock().now())
    console.print(f"key {info.name!r} ({info.prefix}…) revoked at {info.revoked_at}")


@open311_keys_app.command("list")
def open311_key_list() -> None:
    """Every key (never the key itself): name, prefix, created, revoked."""
    from gridsvc.services.open311 import list_keys

    with open_session() as session:
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

    with open_session() as session:
        c = set_category_public(session, category, public)
    state = "public" if c["public"] else "private"
    console.print(f"category {c['code']} ({c['label']}) is {state} in the Open311 feed")
