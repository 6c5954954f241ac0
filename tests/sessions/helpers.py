"""Sessions test helpers: the /sessions/* functions in-process, a booking's time, signed ring-job deliveries."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from lib.calls import scheduling
from localdev.qstash_server import sign
from tests.calls.helpers import SIGNING_KEY, client
from tests.conftest import TEST_ENV, TestUser

RING_URL = TEST_ENV["PUBLIC_BASE_URL"] + scheduling.RING_PATH

# Each route's function file, keyed by its /api path pattern.
ROUTES = {
    "request": "sessions/request.py",
    "requests": "sessions/requests.py",
    "create-invite": "sessions/create-invite.py",
    "scheduled": "sessions/scheduled.py",
    "upcoming": "sessions/upcoming.py",
    "requests/accept": "sessions/requests/[request_id]/accept.py",
    "requests/decline": "sessions/requests/[request_id]/decline.py",
    "requests/cancel": "sessions/requests/[request_id]/cancel.py",
    "requests/reschedule": "sessions/requests/[request_id]/reschedule.py",
    "invites/accept": "sessions/invites/[request_id]/accept.py",
    "invites/decline": "sessions/invites/[request_id]/decline.py",
}


def post(route: str, who: TestUser, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    """POST to one /sessions function as `who` (a body of None sends none, as CallRequestsPage's accept)."""
    if body is None:
        return client(ROUTES[route]).post(path, headers=who.headers, **kwargs)
    return client(ROUTES[route]).post(path, json=body, headers=who.headers, **kwargs)


def get(route: str, who: TestUser, path: str) -> httpx.Response:
    """GET one /sessions function as `who`."""
    return client(ROUTES[route]).get(path, headers=who.headers)


def local_slot(at: datetime) -> tuple[str, str]:
    """(scheduled_date, scheduled_time) as the frontend's date and time inputs give them, in UTC."""
    return at.strftime("%Y-%m-%d"), at.strftime("%H:%M")


def next_minute(now: datetime, minutes: int) -> datetime:
    """A whole UTC minute `minutes` from now (the inputs have minute precision)."""
    return (now + timedelta(minutes=minutes)).replace(second=0, microsecond=0)


def ring_body(request_id: UUID, version: int) -> bytes:
    """A /jobs/ring-scheduled-call body exactly as lib.jobs publishes it."""
    return json.dumps({"requestId": str(request_id), "version": version}, separators=(",", ":")).encode()


def deliver_ring(request_id: UUID, version: int, *, message_id: str | None = None) -> httpx.Response:
    """POST a signed ring job to the function, as QStash delivers it."""
    body = ring_body(request_id, version)
    headers = {
        "Content-Type": "application/json",
        "Upstash-Signature": sign(SIGNING_KEY, url=RING_URL, body=body),
        "Upstash-Message-Id": message_id or f"msg_{uuid.uuid4().hex}",
        "Upstash-Retried": "0",
    }
    return client("jobs/ring-scheduled-call.py").post(scheduling.RING_PATH, content=body, headers=headers)
