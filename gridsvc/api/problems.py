"""Errors as RFC 9457 problem+json bodies; the status comes from gridsvc.errors.HTTP_STATUS."""

from __future__ import annotations

import html
import logging
from typing import Any

import psycopg.errors
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from geodata.errors import GeodataError, InputTooLarge
from gridsvc.errors import GridsvcError, TooLarge, http_status

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if "retry_after" in extra:  # seconds to wait (429)
        headers["Retry-After"] = str(extra["retry_after"])
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


#: Web pages live under this prefix; their errors are pages (or a sign-in redirect), not JSON.
PAGE_PREFIX = "/ui/"

_PAGE_TITLES = {
    403: "没有权限",
    404: "未找到",
    409: "数据冲突",
    413: "文件过大",
    422: "输入有误",
    429: "请求过于频繁",
    503: "数据库暂不可用",
}


def _page_error(
    request: Request, status: int, detail: str, headers: dict[str, str] | None = None
) -> Response | None:
    """For a web page: a sign-in redirect (401) or a short Chinese error page; else None."""
    if not request.url.path.startswith(PAGE_PREFIX):
        return None
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = request.url_for("login_page").include_query_params(next=target)
        return RedirectResponse(f"{login.path}?{login.query}", status_code=303)
    title = _PAGE_TITLES.get(status, "出错了")
    body = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{title}</title></head><body style="font-family:sans-serif;margin:2em">'
        f"<h1>{title}</h1><p>{html.escape(detail)}</p>"
        '<p><a href="/ui/">返回首页</a></p></body></html>'
    )
    return HTMLResponse(body, status_code=status, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GridsvcError)
    retry = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else None
    page = _page_error(request, http_status(exc), exc.detail, retry)
    return page or problem(http_status(exc), exc.title, exc.detail, **exc.extra)


async def _geodata_error(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, InputTooLarge):
        return problem(http_status(TooLarge("")), TooLarge.title, str(exc))
    return problem(422, "Invalid geodata", str(exc))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    detail = f"{where}: {first['msg']}"
    return _page_error(request, 422, detail) or problem(
        422, "Invalid request", detail, errors=errors
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, "HTTP error", str(exc.detail))


async def _integrity_error(_: Request, exc: Exception) -> JSONResponse:
    log.info("integrity error: %s", exc)
    return problem(
        409,
        "Conflict",
        "the change conflicts with existing data: "
        + str(getattr(exc, "orig", exc)).splitlines()[0],
    )


async def _data_error(_: Request, exc: Exception) -> JSONResponse:
    # The database refused a value the API let through: a number beyond its column's range
    # (an id like 8950978451), text too long. That is bad input, not a server fault.
    log.info("data error: %s", exc)
    return problem(
        422,
        "Invalid input",
        "a value is out of range for its field: " + str(getattr(exc, "orig", exc)).splitlines()[0],
    )


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # Concurrent writers that PostgreSQL had to stop (deadlock, serialization failure) are a
    # conflict the client can retry, not an outage.
    if isinstance(getattr(exc, "orig", None), _CONCURRENCY_FAILURES):
        log.info("concurrent change: %s", exc)
        return problem(
            409, "Conflict", "a concurrent change touched the same data; reload and try again"
        )
    log.warning("database unavailable: %s", exc)
    return problem(503, "Database unavailable", "the database is not reachable; try again shortly")


_CONCURRENCY_FAILURES = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error", exc_info=exc)
    return problem(500, "Internal error", "an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    """Register every handler on the app."""
    app.add_exception_handler(GridsvcError, _domain_error)
    app.add_exception_handler(GeodataError, _geodata_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(Exception, _internal_error)
    install_openapi(app)


#: Problem statuses every API operation may answer, and those of the ones that take a body.
_READ_PROBLEMS = (401, 403, 404, 422, 503)
_WRITE_PROBLEMS = (409, 413)
#: The GeoReport v2 error body of /open311 (JSON form; the .xml routes answer <errors>).
_GEOREPORT_ERRORS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
        "required": ["code", "description"],
    },
}


def _problem_statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer, from what it takes."""
    if path == "/health":
        return [503]
    statuses = list(_READ_PROBLEMS)
    if path == "/api/v1/auth/token":
        statuses.append(429)
    if method in ("post", "put", "patch", "delete"):
        statuses.extend(_WRITE_PROBLEMS)
    if path.startswith("/ogc"):
        statuses.append(400)  # OGC API: an unknown or malformed query parameter
    if "requestBody" in operation:
        statuses.append(400)  # a body that cannot be parsed at all (not UTF-8, broken multipart)
    if any(
        p.get("in") == "header" and p["name"].lower() == "if-match"
        for p in operation.get("parameters", [])
    ):
        statuses.append(428)
    return sorted(statuses)


def _error_response(path: str, status: int) -> dict[str, Any]:
    if path.startswith("/open311/"):
        # 401 and 422 are reported as 403 and 400 there (GeoReport v2); 503 stays a problem.
        content: dict[str, Any] = {
            "application/json": {"schema": _GEOREPORT_ERRORS},
            "text/xml": {"schema": {"type": "string"}},
        }
        if status == 503:
            content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        return {"description": "GeoReport v2 error", "content": content}
    return {
        "description": "Problem (RFC 9457)",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the problem+json answers of every operation in an OpenAPI document (in place):
    FastAPI's 422 `HTTPValidationError` is replaced, since `_validation_error` answers a Problem."""
    from gridsvc.schemas import ProblemOut

    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = ProblemOut.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            statuses = _problem_statuses(path, method, operation)
            if path.startswith("/open311/"):
                statuses = sorted({{401: 403, 422: 400}.get(s, s) for s in statuses})
                # GeoReport answers a validation error as 400: FastAPI's 422 (which names the
                # HTTPValidationError removed above) is never sent.
                responses.pop("422", None)
            for status in statuses:
                responses[str(status)] = _error_response(path, status)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make the app's OpenAPI document declare its problem responses."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
