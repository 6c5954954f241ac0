"""Every response that leaves the local router or the Lambda entry carries the functions' security headers and
X-Request-ID, the router's own 404s and 500s included, and each header once."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from lib.http import SECURITY_HEADERS
from localdev.vercel_router import ROOT, build_app
from tests.localdev.test_vercel_router import write_tree
from tests.test_lambda_handler import _body, _Context, http_api_event

EXPECTED = {k.decode(): v.decode() for k, v in SECURITY_HEADERS}
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def assert_enveloped(headers: httpx.Headers) -> str:
    """Every security header exactly once with the functions' value; the request id."""
    for name, value in EXPECTED.items():
        assert headers.get_list(name) == [value], name
    ids = headers.get_list("x-request-id")
    assert len(ids) == 1 and ids[0]
    return ids[0]


@pytest.fixture
def router(clean: None) -> Iterator[TestClient]:
    with TestClient(build_app(ROOT, cron_secret=None, fire_crons=False), raise_server_exceptions=False) as c:
        yield c


def test_the_routers_own_404_carries_the_headers_and_a_request_id(router: TestClient) -> None:
    r = router.get("/api/v1/definitely-not-a-function")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    request_id = assert_enveloped(r.headers)
    assert HEX_ID.match(request_id) and r.json()["requestId"] == request_id
    # A well-formed client id is kept; a malformed one is replaced.
    r = router.get("/nope", headers={"X-Request-ID": "trace-123"})
    assert assert_enveloped(r.headers) == "trace-123" == r.json()["requestId"]
    r = router.get("/nope", headers={"X-Request-ID": "bad id <script>"})
    assert HEX_ID.match(assert_enveloped(r.headers))


def test_a_functions_405_and_200_through_the_router_carry_each_header_once(router: TestClient) -> None:
    r = router.delete("/api/v1/health")
    assert r.status_code == 405
    assert assert_enveloped(r.headers) == r.json()["requestId"]
    r = router.get("/api/v1/health", headers={"X-Request-ID": "trace-200"})
    assert r.status_code == 200 and assert_enveloped(r.headers) == "trace-200"


def test_a_function_without_lib_http_and_the_routers_500s_get_the_envelope_too(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, ["api/echo.py"])
    (tree / "api" / "broken.py").write_text("import not_a_module_anywhere\n")
    with TestClient(build_app(tree, cron_secret=None, fire_crons=False), raise_server_exceptions=False) as c:
        r = c.get("/api/echo", headers={"X-Request-ID": "bad id"})
        request_id = assert_enveloped(r.headers)
        # The function is handed the router's id, so both sides log the same one.
        assert r.json()["headers"]["x-request-id"] == request_id
        r = c.get("/api/broken")
        assert r.status_code == 500 and r.json()["code"] == "FUNCTION_IMPORT_ERROR"
        assert assert_enveloped(r.headers) == r.json()["requestId"]


def test_the_docs_page_keeps_a_csp_that_lets_its_own_style_render(router: TestClient) -> None:
    page = router.get("/api/docs")
    assert page.status_code == 200
    assert page.headers.get_list("content-security-policy") == [
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-request-id"]


def _lambda_headers(response: dict[str, object]) -> httpx.Headers:
    headers = response["headers"]
    assert isinstance(headers, dict)
    return httpx.Headers({k.lower(): v for k, v in headers.items()})


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/api/v1/definitely-not-a-function", 404),
        ("DELETE", "/api/v1/health", 405),
        ("GET", "/api/v1/health", 200),
    ],
)
def test_lambda_responses_carry_the_headers_and_request_id(
    clean: None, method: str, path: str, status: int
) -> None:
    from lambda_handler import lambda_handler

    response = lambda_handler(http_api_event(method, path), _Context())
    assert response["statusCode"] == status
    headers = _lambda_headers(response)
    for name, value in EXPECTED.items():
        assert headers[name] == value, name  # once: Mangum would join duplicates with ","
    assert headers["x-request-id"] and "," not in headers["x-request-id"]
    if status != 200:
        assert _body(response)["requestId"] == headers["x-request-id"]
    else:
        assert json.loads(response["body"])["status"] in ("healthy", "degraded")


def test_a_router_failure_is_a_problem_500_with_the_envelope_not_a_bare_one(tmp_path: Path) -> None:
    app = build_app(write_tree(tmp_path, ["api/echo.py"]), cron_secret=None, fire_crons=False)

    def broken_resolve(path: str) -> None:
        raise RuntimeError("routing table corrupted")

    app.resolve = broken_resolve  # type: ignore[method-assign]
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/echo")
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "ROUTER_ERROR" and "corrupted" not in r.text
    assert assert_enveloped(r.headers) == r.json()["requestId"]
