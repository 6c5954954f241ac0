"""The frontend's realtime client in a real browser: pusher-js in headless Chromium, our auth endpoint, soketi.

The page (tests/browser/realtime.html) is served from its own origin, listed in ALLOWED_ORIGINS, so the channel
authorization is a real cross-origin request with a CORS preflight; the API is the Vercel router over HTTP.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import uuid4

import httpx
import pytest

from lib import db, realtime
from lib.realtime import Event
from localdev import soketi, vercel_router
from tests.browser import browser
from tests.contract.stack import patched_env

if TYPE_CHECKING:  # imported by name, TestUser would be collected as a test class
    from tests.conftest import MakeUser, TestUser

_why_not = browser.unavailable() or (
    None if soketi.is_installed() else "soketi not installed (node or node_modules)"
)
# The skip reason turns into a failure (tests/support/strict_skips.py): a missing test bed fails the run.
pytestmark = pytest.mark.skipif(_why_not is not None, reason=_why_not or "")

EVENT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RealtimeStack:
    """The page's origin, the API and soketi, wired together."""

    site: str
    api: str
    pusher: soketi.Soketi

    @property
    def page(self) -> str:
        """The test page's URL."""
        return self.site + "/realtime.html"

    def connect(self, user: TestUser, channel: str, events: list[str]) -> dict[str, object]:
        """What the page's `digisConnect` takes: as the frontend configures pusher-js."""
        return {
            "key": self.pusher.key,
            "wsHost": self.pusher.host,
            "wsPort": self.pusher.port,
            "authEndpoint": self.api + "/api/v1/realtime/pusher/auth",
            "token": user.token,
            "channel": channel,
            "events": events,
        }


@pytest.fixture(scope="module")
def stack() -> Iterator[RealtimeStack]:
    """Static site, soketi, then the router with PUSHER_* and ALLOWED_ORIGINS pointing at them."""
    with contextlib.ExitStack() as stack:
        site = stack.enter_context(browser.static_site())
        pusher = stack.enter_context(soketi.running())
        origins = ",".join(filter(None, [os.environ.get("ALLOWED_ORIGINS", ""), site]))
        stack.enter_context(
            patched_env(
                {
                    "PUSHER_APP_ID": pusher.app_id,
                    "PUSHER_KEY": pusher.key,
                    "PUSHER_SECRET": pusher.secret,
                    "PUSHER_HOST": pusher.host,
                    "PUSHER_PORT": str(pusher.port),
                    "PUSHER_USE_TLS": "false",
                    "PUSHER_TIMEOUT_S": "2",
                    "ALLOWED_ORIGINS": origins,
                }
            )
        )
        router = stack.enter_context(vercel_router.running(fire_crons=False))
        yield RealtimeStack(site=site, api=router.url, pusher=pusher)


def test_browser_receives_an_event_published_after_commit(stack: RealtimeStack, make_user: MakeUser) -> None:
    """pusher-js authorizes private-user-{id} through /realtime/pusher/auth and gets what lib.realtime sends."""
    creator = make_user(role="creator")
    channel = realtime.user_channel(creator.id)
    connect = stack.connect(creator, channel, [Event.CALL_REQUEST.value])
    with browser.browser(stack.page, connect, wait_events=1) as page:
        page.expect("subscribed", timeout_s=EVENT_TIMEOUT_S)
        payload = realtime.call_request(
            call_id=uuid4(),
            channel=f"call_{uuid4().hex[:12]}",
            call_type="video",
            fan_id=uuid4(),
            creator_id=creator.id,
            rate=10,
            fan_name="stand-in fan",
            creator_name=creator.username,
            expires_at=datetime.now(UTC) + timedelta(seconds=30),
        )
        with db.transaction() as conn:
            realtime.publish(conn, channel, Event.CALL_REQUEST, payload)
        event = page.expect("event", timeout_s=EVENT_TIMEOUT_S)
        page.expect("done", timeout_s=EVENT_TIMEOUT_S)
    assert event["event"] == "call:request"
    assert event["channel"] == channel
    assert event["data"] == payload


def test_creator_browser_rings_when_a_fan_requests_a_call(stack: RealtimeStack, make_user: MakeUser) -> None:
    """POST /api/v1/calls/request as the fan reaches the creator's browser as `call:request`, with the call's ids."""
    creator = make_user(role="creator", video_price=10)
    fan = make_user(balance=500)
    channel = realtime.user_channel(creator.id)
    with browser.browser(
        stack.page, stack.connect(creator, channel, ["call:request"]), wait_events=1
    ) as page:
        page.expect("subscribed", timeout_s=EVENT_TIMEOUT_S)
        sent = time.monotonic()
        response = httpx.post(
            stack.api + "/api/v1/calls/request",
            json={"creatorId": str(creator.id), "callType": "video"},
            headers=fan.headers,
            timeout=10,
        )
        assert response.status_code in (200, 201), response.text
        call = response.json()
        event = page.expect("event", timeout_s=EVENT_TIMEOUT_S)
        latency_s = time.monotonic() - sent
    data = event["data"]
    assert event["event"] == "call:request"
    assert set(data) == set(realtime.CallRequest.__required_keys__)  # exactly API.md's payload
    assert data["callId"] == call["callId"]
    assert data["channel"] == call["channel"]
    assert (data["fanId"], data["creatorId"], data["callType"]) == (str(fan.id), str(creator.id), "video")
    assert data["rate"] == 10
    assert latency_s < EVENT_TIMEOUT_S


def test_browser_cannot_subscribe_to_another_users_channel(stack: RealtimeStack, make_user: MakeUser) -> None:
    """Our auth endpoint refuses someone else's private-user channel, so pusher-js reports a subscription error."""
    me, other = make_user(), make_user()
    connect = stack.connect(me, realtime.user_channel(other.id), ["call:request"])
    with browser.browser(stack.page, connect, wait_events=0) as page:
        refused = page.expect("error", timeout_s=EVENT_TIMEOUT_S)
    assert "not subscribed" in refused["message"]
    assert "403" in refused["message"]
