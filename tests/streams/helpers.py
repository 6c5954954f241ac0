"""Streams test helpers: the functions in-process, users as lib sees them, the outbox, Redis switched off."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from lib import config, db, users
from lib.streams import viewers
from lib.users import User
from tests.conftest import DEAD, TestUser
from tests.support import functions

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)  # injected "now" for tests that move time by hand


def go_live_client() -> TestClient:
    return functions.client("streaming/go-live.py")


def end_client() -> TestClient:
    return functions.client("streaming/end-stream/[stream_id].py")


def join_client() -> TestClient:
    return functions.client("streaming/stream/[stream_ref].py")


def heartbeat_client() -> TestClient:
    return functions.client("streaming/stream/[stream_ref]/heartbeat.py")


def leave_client() -> TestClient:
    return functions.client("streaming/stream/[stream_ref]/leave.py")


def directory_client() -> TestClient:
    return functions.client("streaming/public/streams/live.py")


def go_live(creator: TestUser, title: str = "Morning show", **extra: Any) -> dict[str, Any]:
    """POST /api/streaming/go-live as `creator`; the answer (asserting 200)."""
    r = go_live_client().post(
        "/api/streaming/go-live", json={"title": title, **extra}, headers=creator.headers
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def as_user(who: TestUser) -> User:
    """The lib view of a test user."""
    with db.transaction() as conn:
        found = users.get(conn, who.id)
    assert found is not None
    return found


def stream_row(stream_id: UUID | str) -> dict[str, Any]:
    """The streams row as stored."""
    with db.transaction() as conn:
        row = conn.execute("SELECT * FROM streams WHERE id = %(id)s", {"id": stream_id}).fetchone()
    assert row is not None
    return dict(row)


def outbox(event: str) -> list[dict[str, Any]]:
    """Realtime events of one name queued so far, oldest first (channel, payload)."""
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT channel, payload FROM realtime_outbox WHERE event = %(e)s ORDER BY id", {"e": event}
        ).fetchall()
    return [dict(r) for r in rows]


def in_transaction(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a lib.streams operation in its own committed transaction, as a request would."""
    with db.transaction() as conn:
        return fn(conn, *args, **kwargs)


@contextmanager
def redis_down() -> Iterator[None]:
    """Upstash unreachable for the block (as a deployment would see it), then back."""
    saved = os.environ["UPSTASH_REDIS_REST_URL"]
    os.environ["UPSTASH_REDIS_REST_URL"] = DEAD
    config.reset()
    try:
        yield
    finally:
        os.environ["UPSTASH_REDIS_REST_URL"] = saved
        config.reset()
        viewers.breaker.reset()
