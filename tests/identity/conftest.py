"""Identity fixtures: a Supabase stand-in as SUPABASE_URL, ES256 tokens, and a real HTTP server for races."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest
import uvicorn

from lib import config, db, presence
from localdev import supabase_standin
from localdev.supabase_standin import SupabaseStandin
from tests.conftest import TEST_ENV

SERVICE_ROLE_KEY = TEST_ENV["SUPABASE_SERVICE_ROLE_KEY"]


def repoint(**env: str) -> None:
    # Settings are read once per process: close the pool built from the old ones, then forget them all.
    db.close_pool()
    os.environ.update(env)
    config.reset()


@pytest.fixture(autouse=True)
def _fresh_presence() -> Iterator[None]:
    """No heartbeat throttling or Redis breaker carried over from another test."""
    presence.reset_local()
    yield
    presence.reset_local()


@pytest.fixture
def supabase() -> Iterator[SupabaseStandin]:
    """The Supabase stand-in (JWKS + Admin API) as this test's SUPABASE_URL."""
    with supabase_standin.running(service_role_key=SERVICE_ROLE_KEY) as sb:
        repoint(SUPABASE_URL=sb.url)
        try:
            yield sb
        finally:
            repoint(SUPABASE_URL=TEST_ENV["SUPABASE_URL"])


def es256_claims(sb: SupabaseStandin, sub: UUID | str, /, **overrides: Any) -> dict[str, Any]:
    """Claims like a Supabase access token from this project; `None` values drop a claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(sub),
        "aud": "authenticated",
        "iss": sb.issuer,
        "role": "authenticated",
        "email": f"{str(sub)[:8]}@example.test",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run an ASGI app under uvicorn on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def run_parallel(n: int, fn: Callable[[int], Any], timeout_s: float = 30) -> list[Any]:
    """Run fn(i) in n threads released together by a barrier; re-raise the first failure."""
    barrier = threading.Barrier(n, timeout=timeout_s)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout_s)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    if errors:
        raise errors[0]
    return results
