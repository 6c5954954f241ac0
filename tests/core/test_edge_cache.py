"""Edge caching (issue 15): public reads tell Vercel's CDN how long to serve them; nothing personal or failed is
ever cached."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lib.errors import Conflict
from lib.http import EdgeCache, create_app
from tests.conftest import MakeUser
from tests.support.functions import client as function_client

PUBLIC_5 = "public, max-age=0, s-maxage=5, stale-while-revalidate=10"


def _app(cache: EdgeCache) -> FastAPI:
    app = create_app(rate_limit=None, edge_cache=cache)

    @app.get("/api/x")
    def read(fail: bool = False) -> dict[str, int]:
        if fail:
            raise Conflict("no", code="NO")
        return {"n": 1}

    @app.post("/api/x")
    def write() -> dict[str, int]:
        return {"n": 2}

    return app


def _vary(response: object) -> set[str]:
    values = response.headers.get_list("vary")  # type: ignore[attr-defined]
    return {v.strip().lower() for value in values for v in value.split(",")}


def test_an_answer_identical_for_everyone_is_public_with_or_without_a_token() -> None:
    c = TestClient(_app(EdgeCache(s_maxage=5, stale_while_revalidate=10)))
    anonymous = c.get("/api/x")
    signed_in = c.get("/api/x", headers={"Authorization": "Bearer anything"})
    assert anonymous.headers["cache-control"] == signed_in.headers["cache-control"] == PUBLIC_5
    assert "authorization" not in _vary(anonymous)  # one cached copy for everyone


def test_a_per_viewer_answer_is_public_only_without_a_token_and_varies_on_it() -> None:
    c = TestClient(_app(EdgeCache(s_maxage=5, stale_while_revalidate=10, per_viewer=True)))
    anonymous = c.get("/api/x")
    assert anonymous.headers["cache-control"] == PUBLIC_5
    assert "authorization" in _vary(anonymous)  # the CDN never hands this copy to a signed-in viewer
    signed_in = c.get("/api/x", headers={"Authorization": "Bearer anything"})
    assert signed_in.headers["cache-control"] == "private, no-store"
    assert "authorization" in _vary(signed_in)


def test_errors_and_writes_are_never_cached() -> None:
    c = TestClient(_app(EdgeCache(s_maxage=5, stale_while_revalidate=10)), raise_server_exceptions=False)
    failed = c.get("/api/x", params={"fail": "true"})
    assert failed.status_code == 409 and failed.headers["cache-control"] == "private, no-store"
    assert "cache-control" not in c.post("/api/x").headers
    assert "cache-control" not in TestClient(_app_without_cache()).get("/api/x").headers


def _app_without_cache() -> FastAPI:
    app = create_app(rate_limit=None)

    @app.get("/api/x")
    def read() -> dict[str, int]:
        return {"n": 1}

    return app


@pytest.mark.parametrize(
    "relpath,path",
    [
        ("stats/active-sessions.py", "/api/stats/active-sessions"),
        ("tokens/packages.py", "/api/tokens/packages"),
        ("tokens/catalog.py", "/api/tokens/catalog"),
        ("streaming/public/streams/live.py", "/api/streaming/public/streams/live"),
        ("streaming/public/streams/upcoming.py", "/api/streaming/public/streams/upcoming"),
    ],
)
def test_public_reads_identical_for_everyone_are_cached_at_the_edge(
    relpath: str, path: str, make_user: MakeUser
) -> None:
    fan = make_user()
    c = function_client(relpath)
    for headers in ({}, fan.headers):
        response = c.get(path, headers=headers)
        assert response.status_code == 200, response.text
        cache = response.headers["cache-control"]
        assert cache.startswith("public, ") and "s-maxage=" in cache and "stale-while-revalidate=" in cache
        assert "authorization" not in _vary(response)


@pytest.mark.parametrize(
    "relpath,path",
    [("users/creators.py", "/api/users/creators"), ("users/public/creator/[username].py", None)],
)
def test_creator_pages_are_public_to_visitors_and_private_to_a_signed_in_viewer(
    relpath: str, path: str | None, make_user: MakeUser
) -> None:
    creator, fan = make_user(role="creator"), make_user()
    url = path or f"/api/users/public/creator/{creator.username}"
    c = function_client(relpath)
    anonymous = c.get(url)
    assert anonymous.status_code == 200, anonymous.text
    assert anonymous.headers["cache-control"].startswith("public, ")
    assert "authorization" in _vary(anonymous)
    signed_in = c.get(url, headers=fan.headers)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.headers["cache-control"] == "private, no-store"
    assert "authorization" in _vary(signed_in)
    missing = c.get("/api/users/public/creator/nobody_here_at_all") if path is None else None
    if missing is not None:
        assert missing.status_code == 404 and missing.headers["cache-control"] == "private, no-store"
