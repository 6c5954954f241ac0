"""Calls test helpers: the functions in-process, a clock tests move by hand, calls placed and accepted at a time."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from fastapi.testclient import TestClient

from lib import calls, db, users
from lib.calls.billing import MINUTE_S
from lib.calls.models import Call
from lib.calls.queries import get as get_call
from lib.users import User
from localdev.qstash_server import sign
from tests.conftest import TEST_ENV, TestUser
from tests.support import functions

T = TypeVar("T")
BILL_PATH = "/api/jobs/bill-call"
BILL_URL = TEST_ENV["PUBLIC_BASE_URL"] + BILL_PATH
SIGNING_KEY = TEST_ENV["QSTASH_CURRENT_SIGNING_KEY"]
CRON_HEADERS = {"Authorization": f"Bearer {TEST_ENV['CRON_SECRET']}"}

# Every call route, with how it is asked (for "outsiders get 404 everywhere").
CALL_ROUTES: list[tuple[str, str, str]] = [
    ("POST", "calls/[call_id]/accept.py", "/api/calls/{id}/accept"),
    ("POST", "calls/[call_id]/decline.py", "/api/calls/{id}/decline"),
    ("POST", "calls/[call_id]/cancel.py", "/api/calls/{id}/cancel"),
    ("POST", "calls/[call_id]/heartbeat.py", "/api/calls/{id}/heartbeat"),
    ("POST", "calls/[call_id]/end.py", "/api/calls/{id}/end"),
    ("GET", "calls/[call_id]/status.py", "/api/calls/{id}/status"),
]


def client(relpath: str) -> TestClient:
    """A TestClient on one api/ function."""
    return functions.client(relpath)


def real_now() -> datetime:
    """The wall clock (what the routes use)."""
    return datetime.now(UTC)


def seconds(n: float) -> timedelta:
    """A timedelta of `n` seconds."""
    return timedelta(seconds=n)


def minutes(n: float) -> timedelta:
    """`n` billing minutes."""
    return timedelta(seconds=n * MINUTE_S)


def as_user(who: TestUser) -> User:
    """The lib view of a test user."""
    with db.transaction() as conn:
        found = users.get(conn, who.id)
    assert found is not None
    return found


def in_tx(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(conn, *args, **kwargs)` in its own committed transaction."""
    with db.transaction() as conn:
        return fn(conn, *args, **kwargs)


def balance(who: TestUser | UUID) -> int:
    """A user's token balance."""
    user_id = who if isinstance(who, UUID) else who.id
    with db.transaction() as conn:
        row = conn.execute("SELECT token_balance FROM users WHERE id = %(id)s", {"id": user_id}).fetchone()
    assert row is not None
    return int(row["token_balance"])


def call_row(call_id: UUID) -> Call:
    """The call as stored."""
    with db.transaction() as conn:
        found = get_call(conn, call_id)
    assert found is not None
    return found


def minute_charges(call_id: UUID) -> list[str]:
    """The ledger keys of the fan's debits for this call's minutes, in order."""
    with db.transaction() as conn:
        rows = conn.execute(
            """SELECT idempotency_key FROM token_transactions
               WHERE reference_type = 'call' AND reference_id = %(id)s AND amount < 0 ORDER BY seq""",
            {"id": str(call_id)},
        ).fetchall()
    return [r["idempotency_key"] for r in rows]


def outbox(channel: str | None = None, event: str | None = None) -> list[dict[str, Any]]:
    """Realtime events queued so far (oldest first), optionally filtered."""
    with db.transaction() as conn:
        rows = conn.execute("SELECT channel, event, payload FROM realtime_outbox ORDER BY id").fetchall()
    return [
        dict(r)
        for r in rows
        if (channel is None or r["channel"] == channel) and (event is None or r["event"] == event)
    ]


def place(fan: TestUser, creator: TestUser, at: datetime, call_type: str = "video") -> UUID:
    """The fan requests a call at `at`; its id."""
    placed = in_tx(calls.request_call, as_user(fan), creator.id, call_type, at)
    return placed.callId


def connect(fan: TestUser, creator: TestUser, at: datetime, call_type: str = "video") -> UUID:
    """A call requested 5 s before `at` and accepted by the creator at `at` (minute 1 charged then)."""
    call_id = place(fan, creator, at - seconds(5), call_type)
    in_tx(calls.accept, as_user(creator), call_id, at)
    return call_id


def beat(who: TestUser, call_id: UUID, at: datetime) -> str:
    """A heartbeat from `who` at `at`; the call's state after it."""
    return in_tx(calls.heartbeat, as_user(who), call_id, at).state


def both_beat(fan: TestUser, creator: TestUser, call_id: UUID, at: datetime) -> None:
    """Both sides heartbeat at `at`."""
    beat(fan, call_id, at)
    beat(creator, call_id, at)


def job_body(call_id: UUID, minute: int) -> bytes:
    """A /jobs/bill-call body exactly as lib.jobs publishes it."""
    return json.dumps({"callId": str(call_id), "minute": minute}, separators=(",", ":")).encode()


def signed_headers(
    body: bytes, *, url: str = BILL_URL, key: str = SIGNING_KEY, message_id: str | None = None
) -> dict[str, str]:
    """The headers QStash sends with a delivery of `body` to `url`."""
    return {
        "Content-Type": "application/json",
        "Upstash-Signature": sign(key, url=url, body=body),
        "Upstash-Message-Id": message_id or f"msg_{uuid.uuid4().hex}",
        "Upstash-Retried": "0",
    }


def deliver(call_id: UUID, minute: int, *, message_id: str | None = None, **sign_kwargs: Any) -> Any:
    """POST a signed bill-call job to the function; the response."""
    body = job_body(call_id, minute)
    return client("jobs/bill-call.py").post(
        BILL_PATH, content=body, headers=signed_headers(body, message_id=message_id, **sign_kwargs)
    )
