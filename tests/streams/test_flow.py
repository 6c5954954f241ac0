"""The whole stream through the local Vercel router, with the events arriving over a real websocket (soketi).

go-live -> viewer subscribes (private channel signed by /realtime/pusher/auth) -> joins -> viewer-count ->
directory -> tip via /tips/send -> tip-received -> host ends -> stream-ended -> joining again is STREAM_NOT_LIVE.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from localdev import soketi, vercel_router
from tests.conftest import TEST_ENV, MakeUser
from tests.lib.test_realtime import pusher_settings
from tests.support.pusher_ws import PusherWsClient

pytestmark = pytest.mark.skipif(
    not soketi.is_installed(), reason="soketi not installed (node or localdev/node/node_modules missing)"
)

EVENT_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def pusher() -> Iterator[soketi.Soketi]:
    """One soketi for the module, with the dev credentials."""
    with soketi.running() as h:
        yield h


@pytest.fixture
def server(pusher: soketi.Soketi, clean: None) -> Iterator[httpx.Client]:
    """Every function behind the local Vercel router, publishing to soketi; an HTTP client on it."""
    with (
        pusher_settings(pusher.host, pusher.port, secret=pusher.secret),
        vercel_router.running(cron_secret=TEST_ENV["CRON_SECRET"]) as router,
        httpx.Client(base_url=router.url, timeout=30, trust_env=False) as client,
    ):
        yield client


def authorizer(client: httpx.Client, headers: dict[str, str]) -> Any:
    """Sign subscriptions the way pusher-js does: a form POST to the auth endpoint with the user's token."""

    def authorize(socket_id: str, channel: str) -> dict[str, Any]:
        r = client.post(
            "/api/v1/realtime/pusher/auth",
            data={"socket_id": socket_id, "channel_name": channel},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        signed: dict[str, Any] = r.json()
        return signed

    return authorize


def test_go_live_join_tip_end_over_http_and_websocket(
    pusher: soketi.Soketi, server: httpx.Client, make_user: MakeUser
) -> None:
    host, fan = make_user(role="creator"), make_user(balance=500)

    live = server.post("/api/v1/streaming/go-live", json={"title": "Friday jam"}, headers=host.headers)
    assert live.status_code == 200, live.text
    stream = live.json()["stream"]
    presence = f"private-stream-{stream['channel']}"  # private: any audience size (presence caps at 100)

    with PusherWsClient(pusher.ws_url) as host_ws, PusherWsClient(pusher.ws_url) as fan_ws:
        host_ws.subscribe(presence, authorizer(server, host.headers))
        fan_ws.subscribe(presence, authorizer(server, fan.headers))

        joined = server.get(f"/api/v1/streaming/stream/{stream['channel']}", headers=fan.headers)
        assert joined.status_code == 200, joined.text
        assert joined.json()["stream"]["id"] == stream["id"] and joined.json()["agoraToken"]
        assert host_ws.wait_for("viewer-count", presence, EVENT_TIMEOUT_S) == {
            "streamId": stream["id"],
            "channel": stream["channel"],
            "count": 1,
        }

        listed = server.get("/public/streams/live").json()["streams"]
        assert [(s["channel"], s["viewer_count"]) for s in listed] == [(stream["channel"], 1)]

        tip = server.post(
            "/api/v1/tips/send",
            json={
                "toCreatorId": str(host.id),
                "amountTokens": 25,
                "message": "great set",
                "context": {"streamId": stream["id"], "channel": stream["channel"]},
            },
            headers=fan.headers,
        )
        assert tip.status_code == 200, tip.text
        expected_tip = {
            "tipId": tip.json()["tipId"],
            "streamId": stream["id"],
            "channel": stream["channel"],
            "amount": 25,
            "amountTokens": 25,
            "sender": fan.username,
            "fromUsername": fan.username,
            "message": "great set",
        }
        assert fan_ws.wait_for("tip-received", presence, EVENT_TIMEOUT_S) == expected_tip
        assert host_ws.wait_for("tip-received", presence, EVENT_TIMEOUT_S) == expected_tip

        ended = server.post(f"/api/v1/streaming/end-stream/{stream['id']}", headers=host.headers)
        assert ended.status_code == 200, ended.text
        summary = ended.json()["stream"]
        assert (summary["id"], summary["peakViewers"], summary["tipsTokens"]) == (stream["id"], 1, 25)
        assert summary["durationSeconds"] >= 0
        assert fan_ws.wait_for("stream-ended", presence, EVENT_TIMEOUT_S) == {
            "streamId": stream["id"],
            "channel": stream["channel"],
            "creatorId": str(host.id),
        }

    again = server.get(f"/api/streaming/stream/{stream['id']}", headers=fan.headers)
    assert again.status_code == 400 and again.json()["code"] == "STREAM_NOT_LIVE"
    assert server.get("/api/public/streams/live").json()["streams"] == []
