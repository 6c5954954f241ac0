"""lib/routing/openapi.py and localdev/openapi.py: how function documents are merged, secured and rendered."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import create_model

from lib.auth import AdminUser, Claims, CurrentUser
from lib.http import create_app
from lib.jobs import CronAuth
from lib.routing import ROOT
from lib.routing.openapi import OpenApiBuildError, build_document, describe, openapi_document
from localdev import openapi
from localdev.openapi import render_html


def _function(file: str, app: FastAPI) -> Any:
    return describe(app, file)


def _apps_with_item(field: str) -> FastAPI:
    """A function posting and returning its own `Item` model, whose one field is `field`."""
    item = create_model("Item", **{field: (int, ...)})  # type: ignore[call-overload]
    app = create_app()

    def post(body: Any) -> Any:
        return body

    post.__annotations__["body"] = item  # a real class: this module's annotations are strings
    app.add_api_route(f"/api/{field}", post, methods=["POST"], response_model=item)
    return app


def _op(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    op: dict[str, Any] = document["paths"][path][method]
    return op


def test_same_name_different_schemas_are_renamed_per_function_and_refs_follow() -> None:
    """Two functions' different `Item` models both survive, named after their files, each op pointing at its own."""
    document = build_document(
        [_function("api/a.py", _apps_with_item("a")), _function("api/b.py", _apps_with_item("b"))]
    )
    schemas = document["components"]["schemas"]
    assert "Item" not in schemas
    assert set(schemas["Item__a"]["properties"]) == {"a"}
    assert set(schemas["Item__b"]["properties"]) == {"b"}
    body = _op(document, "/api/b", "post")["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Item__b"}


def test_identical_schemas_are_shared_and_names_do_not_depend_on_order() -> None:
    """The same model from two functions is one component; input order changes nothing."""
    one, two = _function("api/x.py", _apps_with_item("n")), _function("api/y.py", _apps_with_item("n"))
    # Both declare POST /api/n: give the second its own path.
    two.operations[0].path = "/api/n2"
    forward = build_document([one, two])
    assert forward == build_document([two, one])
    assert [n for n in forward["components"]["schemas"] if n.startswith("Item")] == ["Item"]


def test_security_follows_the_auth_dependencies() -> None:
    """current_user / claims_for need the bearer token, AdminUser adds a 403, CronAuth the cron secret, else none."""
    app = create_app()

    @app.get("/api/mine")
    def mine(user: CurrentUser) -> dict[str, str]:
        return {}

    @app.get("/api/claims")
    def claims(claims: Claims) -> dict[str, str]:
        return {}

    @app.get("/api/admin-only")
    def admin_only(user: AdminUser) -> dict[str, str]:
        return {}

    @app.get("/api/cron/x")
    def cron(_: CronAuth) -> dict[str, str]:
        return {}

    @app.get("/api/public")
    def public() -> dict[str, str]:
        return {}

    document = build_document([_function("api/many.py", app)])
    bearer: list[dict[str, list[str]]] = [{"supabaseJwt": []}]
    assert _op(document, "/api/mine", "get")["security"] == bearer
    assert _op(document, "/api/claims", "get")["security"] == bearer
    assert _op(document, "/api/admin-only", "get")["security"] == bearer
    assert "403" in _op(document, "/api/admin-only", "get")["responses"]
    assert _op(document, "/api/cron/x", "get")["security"] == [{"cronSecret": []}]
    public_op = _op(document, "/api/public", "get")
    assert "security" not in public_op and "401" not in public_op["responses"]
    assert set(document["components"]["securitySchemes"]) == {"supabaseJwt", "cronSecret"}


def test_errors_are_problem_json_and_fastapi_validation_schemas_are_gone() -> None:
    """Every operation documents problem+json errors; 422 is ValidationProblem; HTTPValidationError is pruned."""
    document = build_document([_function("api/a.py", _apps_with_item("a"))])
    responses = _op(document, "/api/a", "post")["responses"]
    assert responses["422"]["content"]["application/problem+json"]["schema"]["$ref"].endswith(
        "/ValidationProblem"
    )
    for status in ("413", "429", "4XX", "500"):
        assert "application/problem+json" in responses[status]["content"], status
    assert set(responses["429"]["headers"]) >= {"Retry-After", "RateLimit-Remaining"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "ValidationError" not in document["components"]["schemas"]


def test_v1_paths_are_listed_once_under_api() -> None:
    """A route declared under /api/v1 appears as /api/...; the description says /api/v1 serves the same."""
    app = create_app(rate_limit=None)

    @app.get("/api/v1/thing")
    def thing() -> dict[str, str]:
        return {}

    document = build_document([_function("api/thing.py", app)])
    assert list(document["paths"]) == ["/api/thing"]
    assert "/api/v1/" in document["info"]["description"]


def test_two_functions_documenting_one_operation_is_an_error() -> None:
    """Vercel serves a path from one file: a second claim on the same operation is refused, not silently dropped."""
    with pytest.raises(OpenApiBuildError, match="POST /api/a"):
        build_document(
            [_function("api/a.py", _apps_with_item("a")), _function("api/z.py", _apps_with_item("a"))]
        )


def test_real_document_lists_each_operation_once_with_unique_ids() -> None:
    """The tree's document: /api paths only, unique operationIds, every operation tied to its function file."""
    document = openapi_document()
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert all(p.startswith("/api/") and not p.startswith("/api/v1/") for p in document["paths"])
    files = {op["x-vercel-function"] for item in document["paths"].values() for op in item.values()}
    assert all(Path(ROOT, f).is_file() for f in files)


def test_docs_page_is_self_contained_and_lists_every_operation() -> None:
    """No scripts, stylesheets or images from elsewhere (no internet at test time); every operation is on it."""
    document = openapi_document()
    page = render_html(document)
    assert not re.search(r"<(script|link|img|iframe)\b", page, re.IGNORECASE)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page, re.IGNORECASE)
    for item in document["paths"].values():
        for op in item.values():
            assert f'id="op-{op["operationId"]}"' in page


def test_cli_writes_the_document(tmp_path: Path) -> None:
    """scripts/openapi --out FILE --html FILE writes both."""
    out, page = tmp_path / "openapi.json", tmp_path / "openapi.html"
    assert openapi.main(["--out", str(out), "--html", str(page)]) == 0
    assert json.loads(out.read_text()) == openapi_document()
    assert page.read_text().startswith("<!doctype html>")
