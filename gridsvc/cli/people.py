"""gridsvc people: roster imports, roles, duties, coverage and the 责任网络图."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gridsvc.cli.common import acting_as, app, console, fail, open_session

if TYPE_CHECKING:
    pass

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

    with open_session() as session:
        report = import_roster(session, acting_as(session), roster, commit=commit)
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

    with open_session() as session:
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
            acting_as(session),
            person_id=person_id,
            role=role,
            target=target,
            starts_on=parse_date(starts_on),
            employment=employment,
        )
        session.commit()
        console.print(f"assignment #{row.id}: person #{person_id} is {role} of {target.label}")


@people_app.command("end")
def people_end(
    assignment_id: Annotated[int, typer.Argument(help="assignment id")],
    on: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today)")] = None,
) -> None:
    """End an assignment (kept in the history)."""
    from gridsvc.services import people
    from gridsvc.services.roster import parse_date

    with open_session() as session:
        row = people.end_assignment(session, acting_as(session), assignment_id, parse_date(on))
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

    with open_session() as session:
        rows = people.assignments_of_cell(session, get_cell(session, cell).id, history=history)
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

    with open_session() as session:
        if level is not None:
            if not text_:
                fail("give --text with --level")
            people.set_level_duty(session, level, text_ or "", user="cli")
        rows = people.level_duties(session)
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

    with open_session() as session:
        report = coverage(
            session,
            acting_as(session),
            street_code=None if community else street,
            community_code=community,
            as_of=parse_date(as_of),
            distance_m=distance_m,
        )
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
        fail("the output must end in .svg, .png or .json")
    with open_session() as session:
        tree = people.responsibility_tree(session, acting_as(session), street, on=parse_date(on))
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

    with open_session() as session:
        sector = people.create_sector(
            session,
            acting_as(session),
            community=community,
            name=name,
            level=level,
            parent=parent,
            cells=list(cells or []),
        )
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
    with open_session() as session:
        admin = acting_as(session)
        if what == "visit":
            if household is None:
                fail("a visit needs --household")
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
                fail("a link needs --person-id and --household")
            result = people.link_household(
                session,
                admin,
                person_id=person_id or 0,
                household_id=household or 0,
                starts_on=day,
            )
        elif what == "post":
            if person_id is None or not kind:
                fail("a post needs --person-id and --kind")
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
                fail("an organisation needs --community and --name")
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
            fail("record one of: visit, link, post, organisation")
    sys.stdout.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
