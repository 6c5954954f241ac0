"""POST /realtime/pusher/auth: my user channel, the calls I am in, live streams' private channels; nothing else."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from lib import db
from tests.calls.helpers import call_row, client, connect, real_now
from tests.conftest import TEST_ENV
from tests.conftest import TestUser as Person

SOCKET = "1234.5678"


def auth(who: Person | None, channel: str, socket_id: str = SOCKET) -> Any:
    return client("realtime/pusher/auth.py").post(
        "/api/realtime/pusher/auth",
        data={"socket_id": socket_id, "channel_name": channel},
        headers=who.headers if who else {},
    )


def expected_auth(channel: str, channel_data: str | None = None) -> str:
    """Pusher's signature: key:HMAC-SHA256(secret, "socket_id:channel[:channel_data]")."""
    message = f"{SOCKET}:{channel}" + (f":{channel_data}" if channel_data else "")
    digest = hmac.new(TEST_ENV["PUSHER_SECRET"].encode(), message.encode(), hashlib.sha256).hexdigest()
    return f"{TEST_ENV['PUSHER_KEY']}:{digest}"


def test_my_user_channel_only(fan: Person, creator: Person) -> None:
    mine = auth(fan, f"private-user-{fan.id}")
    assert mine.status_code == 200
    assert mine.json() == {"auth": expected_auth(f"private-user-{fan.id}")}
    theirs = auth(fan, f"private-user-{creator.id}")
    assert theirs.status_code == 403 and theirs.json()["code"] == "CHANNEL_FORBIDDEN"


def test_a_call_channel_for_its_two_participants_only(fan: Person, creator: Person, outsider: Person) -> None:
    channel = "private-call-" + call_row(connect(fan, creator, real_now())).channel
    assert auth(fan, channel).json() == {"auth": expected_auth(channel)}
    assert auth(creator, channel).status_code == 200
    assert auth(outsider, channel).status_code == 403


def test_a_live_streams_private_channel_for_signed_in_viewers(creator: Person, outsider: Person) -> None:
    stream_channel = f"stream-{creator.id.hex}"
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO streams (creator_id, channel, title) VALUES (%(c)s, %(ch)s, 'Live')",
            {"c": creator.id, "ch": stream_channel},
        )
    # Private, not presence: Pusher caps presence channels at 100 members (counts come from its webhooks).
    channel = f"private-stream-{stream_channel}"
    r = auth(outsider, channel)
    assert r.status_code == 200
    assert r.json() == {"auth": expected_auth(channel)}
    assert auth(creator, channel).json() == {"auth": expected_auth(channel)}
    assert auth(None, channel).status_code == 401


@pytest.mark.parametrize(
    "channel",
    [
        "private-call-call-00000000000000000000000000000000",
        "private-stream-stream-not-live",
        "presence-stream-stream-not-live",
        "private-something-else",
        "presence-user-x",
        "public-updates",
        "private-user-",
    ],
)
def test_everything_else_is_403(fan: Person, channel: str) -> None:
    assert auth(fan, channel).status_code == 403


def test_a_malformed_socket_id_is_400(fan: Person) -> None:
    r = auth(fan, f"private-user-{fan.id}", socket_id="not-a-socket")
    assert r.status_code == 400 and r.json()["code"] == "INVALID_SOCKET_ID"
