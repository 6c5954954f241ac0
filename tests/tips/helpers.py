"""Tips test helpers: the functions in-process, a live stream, and what the database and outbox hold."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from lib import db
from tests.conftest import TestUser
from tests.support.functions import client

GIFT = "/api/stream-features/gift"
TIP = "/api/tips/send"


def tip_client() -> TestClient:
    return client("tips/send.py")


def gift_client() -> TestClient:
    return client("stream-features/gift.py")


def send_tip(who: TestUser, body: dict[str, Any], **headers: str) -> Any:
    """POST /api/v1/tips/send as the frontend does (its base URL ends in /api/v1)."""
    return tip_client().post("/api/v1/tips/send", json=body, headers={**who.headers, **headers})


def send_gift(who: TestUser, body: dict[str, Any], **headers: str) -> Any:
    return gift_client().post("/api/v1/stream-features/gift", json=body, headers={**who.headers, **headers})


def go_live(creator: TestUser) -> dict[str, Any]:
    """Start a stream through POST /streaming/go-live; its `stream` object ({id, channel, ...})."""
    r = client("streaming/go-live.py").post(
        "/api/streaming/go-live", json={"title": "Live now"}, headers=creator.headers
    )
    assert r.status_code == 200, r.text
    stream: dict[str, Any] = r.json()["stream"]
    return stream


def end_stream(creator: TestUser, stream_id: str) -> dict[str, Any]:
    r = client("streaming/end-stream/[stream_id].py").post(
        f"/api/streaming/end-stream/{stream_id}", headers=creator.headers
    )
    assert r.status_code == 200, r.text
    summary: dict[str, Any] = r.json()["stream"]
    return summary


def balance(user_id: UUID) -> int:
    with db.transaction() as conn:
        row = conn.execute("SELECT token_balance FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return int(row["token_balance"])


def stream_tips(stream_id: str) -> int:
    with db.transaction() as conn:
        row = conn.execute("SELECT tips_tokens FROM streams WHERE id = %s", (stream_id,)).fetchone()
    assert row is not None
    return int(row["tips_tokens"])


def tips_rows(sender: UUID) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        return [
            dict(r)
            for r in conn.execute("SELECT * FROM tips WHERE from_user_id = %s ORDER BY created_at", (sender,))
        ]


def ledger_rows(user_id: UUID) -> list[dict[str, Any]]:
    """The user's postings other than the test seed."""
    with db.transaction() as conn:
        return [
            dict(r)
            for r in conn.execute(
                "SELECT * FROM token_transactions WHERE user_id = %s AND reference_type <> 'test'", (user_id,)
            )
        ]


def outbox(event: str | None = None) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        rows = conn.execute("SELECT channel, event, payload FROM realtime_outbox ORDER BY id").fetchall()
    return [dict(r) for r in rows if event is None or r["event"] == event]
