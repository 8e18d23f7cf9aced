"""The typed contract (issue 13 item 4): every /api/v1 operation declares a response schema for
its JSON answers, so clients and the fuzz (tests/gridsvc/test_fuzz.py) can check them."""

from __future__ import annotations

from typing import Any

from gridsvc.main import create_app

#: Operations still answering an open object (none: keep it that way).
NOT_YET_TYPED: set[tuple[str, str]] = set()
_METHODS = {"get", "put", "post", "patch", "delete"}


def _described(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """True when the schema names its fields: a model (a $ref to an object with properties),
    an array of such, a union of such, or a scalar — not a bare "any object"."""
    if "$ref" in schema:
        return _described(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if schema.get("type") == "array":
        return _described(schema.get("items", {}), components)
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf", schema.get("oneOf"))
        return all(o.get("type") == "null" or _described(o, components) for o in options)
    if schema.get("type") == "object":
        return bool(schema.get("properties"))
    return schema.get("type") in {"string", "integer", "number", "boolean"}


def _untyped_operations(document: dict[str, Any]) -> list[str]:
    components = document.get("components", {}).get("schemas", {})
    missing = []
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for method, operation in item.items():
            if method not in _METHODS or (method.upper(), path) in NOT_YET_TYPED:
                continue
            answers = {
                code: r for code, r in operation["responses"].items() if str(code).startswith("2")
            }
            json_schemas = [
                media.get("schema", {})
                for r in answers.values()
                for kind, media in r.get("content", {}).items()
                if "json" in kind  # CSV, images, photos and vector tiles are files
            ]
            no_body = all(str(code) == "204" or not r.get("content") for code, r in answers.items())
            has_files = any(
                "json" not in kind for r in answers.values() for kind in r.get("content", {})
            )
            if not answers or not (json_schemas or no_body or has_files):
                missing.append(f"{method.upper()} {path}: no 2xx response")
            elif not all(_described(s, components) for s in json_schemas):
                missing.append(f"{method.upper()} {path}")
    return missing


def test_every_api_operation_declares_its_response_schema() -> None:
    assert _untyped_operations(create_app().openapi()) == []


def test_the_check_finds_an_untyped_route() -> None:
    """The walk itself: a dict[str, Any] answer (the old people routes) is caught."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/api/v1/things")
    def things() -> dict[str, Any]:
        return {}

    assert _untyped_operations(app.openapi()) == ["GET /api/v1/things"]
