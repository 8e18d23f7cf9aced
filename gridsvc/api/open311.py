"""Open311 GeoReport v2 under /open311/v2: an adapter that only translates HTTP, JSON and XML
to the incident services (gridsvc.services.open311). Errors use the GeoReport error format
(``[{"code": 404, "description": "…"}]`` or ``<errors><error>…</error></errors>``)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from gridsvc import __version__
from gridsvc.api.deps import SessionDep
from gridsvc.domain import MAX_CODE, MAX_NAME
from gridsvc.errors import GridsvcError, InvalidInput, http_status
from gridsvc.services import open311
from gridsvc.services.clock import Clock, get_clock

Fmt = Literal["json", "xml"]
ClockDep = Annotated[Clock, Depends(get_clock)]
SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-23T00:00:00Z"
#: Repeated elements inside an XML object: list key → element name of each item.
_ITEM_NAMES = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute"}


def _xml(root: str, item: str | None, payload: Any) -> bytes:
    top = ET.Element(root)

    def fill(parent: ET.Element, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, list):
                    holder = ET.SubElement(parent, k)
                    for x in v:
                        fill(ET.SubElement(holder, _ITEM_NAMES.get(k, k)), x)
                else:
                    fill(ET.SubElement(parent, k), v)
        elif isinstance(value, bool):
            parent.text = "true" if value else "false"
        elif value is not None:
            parent.text = str(value)

    if item is None:
        fill(top, payload)
    else:
        for element in payload:
            fill(ET.SubElement(top, item), element)
    return ET.tostring(top, encoding="utf-8", xml_declaration=True)


def render(fmt: str, root: str, item: str | None, payload: Any, status: int = 200) -> Response:
    """JSON (lists/objects as is) or XML (root element, one `item` element per entry)."""
    if fmt == "xml":
        return Response(_xml(root, item, payload), status, media_type="text/xml; charset=utf-8")
    body = json.dumps(payload, ensure_ascii=False)
    return Response(body, status, media_type="application/json")


def _error(fmt: str, status: int, description: str) -> Response:
    return render(fmt, "errors", "error", [{"code": status, "description": description}], status)


class Open311Route(APIRoute):
    """Routes whose errors come out in the GeoReport error format, in the requested format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler: domain and validation errors → GeoReport errors."""
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            fmt = "xml" if request.url.path.endswith(".xml") else "json"
            try:
                return await handler(request)
            except GridsvcError as exc:
                status = http_status(exc)
                status = {401: 403, 422: 400}.get(status, status)
                return _error(fmt, status, exc.detail)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
                return _error(fmt, 400, f"{where}: {first.get('msg', 'invalid request')}")

        return wrapped


#: Every answer is JSON or XML, as the path's format says.
_FORMATS = {"content": {"application/json": {}, "text/xml": {"schema": {"type": "string"}}}}
router = APIRouter(
    prefix="/open311/v2",
    tags=["open311"],
    route_class=Open311Route,
    responses={200: {**_FORMATS, "description": "JSON or XML"}},
)


@router.get("/discovery.{fmt}")
def discovery(request: Request, fmt: Fmt) -> Response:
    """Service discovery: where the endpoint is and which formats it speaks."""
    base = str(request.base_url).rstrip("/") + "/open311/v2/"
    payload = {
        "changeset": CHANGESET,
        "contact": "gridsvc 网格化管理服务 (see the street office for support)",
        "key_service": "API keys are issued by the street office: gridsvc incidents open311 keys",
        "endpoints": [
            {
                "specification": SPEC,
                "url": base,
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
        "version": __version__,
    }
    return render(fmt, "discovery", None, payload)


#: A partner's key on GETs: the full record of the cases in its scope (else the public view).
ApiKey = Annotated[
    str | None,
    Query(
        max_length=MAX_NAME, description="a partner's key: full records of the cases in its scope"
    ),
]


@router.get("/services.{fmt}")
def services(session: SessionDep, fmt: Fmt, api_key: ApiKey = None) -> Response:
    """The service list: our incident categories (the public ones without a key)."""
    client = open311.reader(session, api_key)
    return render(fmt, "services", "service", open311.services(session, client))


@router.get("/services/{code}.{fmt}")
def service_definition(
    session: SessionDep,
    code: Annotated[str, PathParam(max_length=MAX_CODE)],
    fmt: Fmt,
    api_key: ApiKey = None,
) -> Response:
    """A service definition (ours need no extra attributes)."""
    client = open311.reader(session, api_key)
    return render(
        fmt, "service_definition", None, open311.service_definition(session, code, client)
    )


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _date(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a W3C datetime, e.g. 2026-01-01T00:00:00Z") from exc
    if parsed.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone (Z or +08:00)")
    return parsed


@router.get("/requests.{fmt}")
def get_requests(
    session: SessionDep,
    clock: ClockDep,
    fmt: Fmt,
    service_request_id: Annotated[str | None, Query(max_length=MAX_CODE)] = None,
    service_code: Annotated[str | None, Query(max_length=MAX_CODE)] = None,
    start_date: Annotated[str | None, Query(max_length=MAX_CODE)] = None,
    end_date: Annotated[str | None, Query(max_length=MAX_CODE)] = None,
    status: Annotated[str | None, Query(max_length=MAX_CODE)] = None,
    jurisdiction_id: Annotated[str | None, Query(max_length=MAX_CODE)] = None,
    api_key: ApiKey = None,
) -> Response:
    """Service requests by the standard filters (ids override the rest; 90 days by default):
    the public view of public categories, full records in a partner key's scope."""
    ids = _csv(service_request_id)
    if any(not i.isdigit() or int(i) >= 2**31 for i in ids):
        raise InvalidInput("service_request_id takes numeric ids, comma-separated")
    rows = open311.requests(
        session,
        client=open311.reader(session, api_key),
        now=clock.now(),
        ids=tuple(int(i) for i in ids),
        codes=_csv(service_code),
        start=_date(start_date, "start_date"),
        end=_date(end_date, "end_date"),
        status=_csv(status),
    )
    return render(fmt, "service_requests", "request", rows)


@router.post(
    "/requests.{fmt}",
    status_code=201,
    responses={201: {**_FORMATS, "description": "the request, created"}},
)
async def post_request(
    request: Request, fmt: Fmt, session: SessionDep, clock: ClockDep
) -> Response:
    """Submit a service request (form-encoded, as the standard says; JSON accepted too)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            params = await request.json()
        except ValueError as exc:
            raise InvalidInput("the body is not valid JSON") from exc
        if not isinstance(params, dict):
            raise InvalidInput("the JSON body must be an object")
    else:
        params = dict(await request.form())
    params = {k: str(v) for k, v in params.items() if isinstance(v, str | int | float)}
    params.update({k: v for k, v in request.query_params.items() if k not in params})
    from starlette.concurrency import run_in_threadpool

    open311.check_params(params)

    def run() -> dict[str, Any]:
        client = open311.check_key(session, params.get("api_key"))
        return open311.submit(session, params, client=client, now=clock.now())

    created = await run_in_threadpool(run)
    return render(fmt, "service_requests", "request", [created], status=201)


@router.get("/requests/{request_id}.{fmt}")
def get_request(
    session: SessionDep,
    clock: ClockDep,
    request_id: Annotated[str, PathParam(max_length=MAX_CODE)],
    fmt: Fmt,
    api_key: ApiKey = None,
) -> Response:
    """One service request (a list of one, as the standard has it): the public view, or the
    full record in a partner key's scope."""
    client = open311.reader(session, api_key)
    found = open311.request(session, request_id, now=clock.now(), client=client)
    return render(fmt, "service_requests", "request", [found])


@router.get("/tokens/{token}.{fmt}")
def get_token(
    session: SessionDep, token: Annotated[str, PathParam(max_length=MAX_CODE)], fmt: Fmt
) -> Response:
    """The service request id a submission token stands for."""
    return render(fmt, "service_requests", "request", [open311.token(session, token)])
