"""The rate limit through create_app: a read is counted while it runs (its Redis round trip overlaps the
database's) and a refused read still answers 429, never its result; a write is counted before it runs, so a
refused write never runs. Real Redis through the Upstash gateway."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient

from lib.errors import Conflict
from lib.http import create_app
from lib.ratelimit import LIMITS


def _app(ran: list[str]) -> FastAPI:
    app = create_app(rate_limit="payment")

    @app.get("/api/x")
    def read(fail: bool = False) -> dict[str, int]:
        ran.append("read")
        if fail:
            raise Conflict("no", code="NO")
        return {"n": 1}

    @app.post("/api/x")
    def write() -> dict[str, int]:
        ran.append("write")
        return {"n": 2}

    return app


def _ip() -> dict[str, str]:
    return {"x-real-ip": f"198.51.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}


def test_a_refused_read_answers_429_with_the_limit_headers(clean: None) -> None:
    ran: list[str] = []
    c = TestClient(_app(ran), raise_server_exceptions=False)
    headers = _ip()
    limit = LIMITS["payment"]
    answers = [c.get("/api/x", headers=headers) for _ in range(limit + 2)]
    assert [a.status_code for a in answers] == [200] * limit + [429, 429]
    assert answers[0].headers["ratelimit-limit"] == str(limit)
    assert answers[0].headers["ratelimit-remaining"] == str(limit - 1)
    refused = answers[-1]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["retry-after"]) >= 1 and refused.json()["code"] == "RATE_LIMITED"
    # A read that fails while its limit refuses it: the 429 wins, as when the limit was checked first.
    failed = c.get("/api/x", params={"fail": "true"}, headers=headers)
    assert failed.status_code == 429


def test_a_refused_write_never_runs(clean: None) -> None:
    ran: list[str] = []
    c = TestClient(_app(ran), raise_server_exceptions=False)
    headers = _ip()
    limit = LIMITS["payment"]
    statuses = [c.post("/api/x", headers=headers).status_code for _ in range(limit + 3)]
    assert statuses == [200] * limit + [429] * 3
    assert ran == ["write"] * limit
