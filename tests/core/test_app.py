"""create_app's shared behaviour: problems, request ids, CORS, security headers, limits, path forms."""

from __future__ import annotations

import pytest
from fastapi import Body, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, StrictInt

from lib.errors import Conflict
from lib.http import create_app
from lib.urls import canonical_path, origins_regex

SECURITY = ("x-content-type-options", "x-frame-options", "referrer-policy", "strict-transport-security")


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: StrictInt


def _app() -> FastAPI:
    app = create_app(rate_limit=None)

    @app.post("/api/things/{thing_id}/poke")
    def poke(thing_id: str, item: Item = Body()) -> dict[str, object]:
        if item.amount == 409:
            raise Conflict("Already poked", code="ALREADY_POKED", thingId=thing_id)
        if item.amount == 500:
            raise RuntimeError("boom: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig")
        return {"thing": thing_id, "amount": item.amount}

    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(_app(), raise_server_exceptions=False)


@pytest.mark.parametrize(
    "path",
    [
        "/api/things/abc/poke",
        "/api/v1/things/abc/poke",
        "/api/things/[thing_id]/poke?thing_id=abc",
        "/api/things/%5Bthing_id%5D/poke?thing_id=abc",
    ],
)
def test_every_path_form_reaches_the_route(client: TestClient, path: str) -> None:
    r = client.post(path, json={"amount": 3})
    assert r.status_code == 200, r.text
    assert r.json() == {"thing": "abc", "amount": 3}


def test_app_error_is_problem_json_with_frontend_members(client: TestClient) -> None:
    r = client.post("/api/v1/things/t1/poke", json={"amount": 409})
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "ALREADY_POKED"
    assert body["error"] == body["message"] == body["detail"] == "Already poked"
    assert body["status"] == 409 and body["title"] == "Conflict" and body["type"].startswith("https://")
    assert body["thingId"] == "t1"
    assert body["instance"] == "/api/v1/things/t1/poke"


@pytest.mark.parametrize(
    "bad", [{"amount": "3"}, {"amount": 1.5}, {"amount": True}, {"amount": 3, "x": 1}, {}]
)
def test_validation_failure_is_422_listing_fields(client: TestClient, bad: dict[str, object]) -> None:
    r = client.post("/api/things/t/poke", json=bad)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert body["errors"] and all("field" in e for e in body["errors"])


def test_unexpected_error_is_generic_500_without_stack(client: TestClient) -> None:
    r = client.post("/api/things/t/poke", json={"amount": 500})
    assert r.status_code == 500
    body = r.json()
    assert body["code"] == "INTERNAL_ERROR"
    assert "boom" not in r.text and "Traceback" not in r.text
    assert body["requestId"] == r.headers["x-request-id"]


@pytest.mark.parametrize("amount,status", [(1, 200), (409, 409), (500, 500)])
def test_security_headers_on_every_status(client: TestClient, amount: int, status: int) -> None:
    r = client.post("/api/things/t/poke", json={"amount": amount})
    assert r.status_code == status
    for name in SECURITY:
        assert name in r.headers, (name, status)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


def test_unknown_path_and_method_are_problems(client: TestClient) -> None:
    r = client.get("/api/other")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    assert "x-frame-options" in r.headers
    r = client.get("/api/things/t/poke")
    assert r.status_code == 405 and r.json()["code"] == "METHOD_NOT_ALLOWED"


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    r = client.post("/api/things/t/poke", json={"amount": 1}, headers={"X-Request-ID": "req-123"})
    assert r.headers["x-request-id"] == "req-123"
    r = client.post("/api/things/t/poke", json={"amount": 1}, headers={"X-Request-ID": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces" and len(r.headers["x-request-id"]) == 32


def test_body_over_one_mib_is_413_declared_or_chunked(client: TestClient) -> None:
    big = b'{"amount": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    r = client.post("/api/things/t/poke", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"

    def chunks():  # no Content-Length: the limit still holds
        yield b'{"amount": 1, "pad": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    r = client.post("/api/things/t/poke", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_cors_allows_listed_and_wildcard_origins_only(client: TestClient) -> None:
    for origin in ("http://localhost:5173", "https://digis-app-git-pr-12-digisapp.vercel.app"):
        r = client.options(
            "/api/things/t/poke",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization, Idempotency-Key",
            },
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == origin
        assert "idempotency-key" in r.headers["access-control-allow-headers"].lower()
    for origin in (
        "https://evil.example",
        "https://vercel.app.evil.example",
        "https://a.b.vercel.app",
        "https://digis-pr-12.vercel.app",  # anyone's Vercel app: only the project-scoped pattern is listed
        "https://digis-app-x-digisapp.vercel.app.evil.example",
    ):
        r = client.post("/api/things/t/poke", json={"amount": 1}, headers={"Origin": origin})
        assert "access-control-allow-origin" not in r.headers, origin


def test_origins_regex_escapes_dots() -> None:
    import re

    rx = re.compile(origins_regex(["https://digis-app-*-digisapp.vercel.app"]))
    assert rx.match("https://digis-app-x-1-digisapp.vercel.app")
    assert not rx.match("https://digis-app-x-digisappxvercel.app")
    assert not rx.match("https://digis-app-x-digisapp.vercelXapp")


def test_canonical_path_maps_both_vercel_forms() -> None:
    assert canonical_path("/api/v1/calls/9/accept", b"") == "/api/calls/9/accept"
    assert canonical_path("/api/calls/[call_id]/accept", b"call_id=9") == "/api/calls/9/accept"
    assert canonical_path("/api/v1", b"") == "/api"
    assert canonical_path("/api/v1x/y", b"") == "/api/v1x/y"


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/things/a%00b/poke", {"amount": 1}),
        ("/api/things/t/poke?x=a%00b", {"amount": 1}),
        ("/api/things/t/poke", {"amount": 1, "note": "a\u0000b"}),
    ],
)
def test_nul_characters_are_422_not_500(client: TestClient, path: str, body: dict[str, object]) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert "NUL" in r.json()["detail"]
