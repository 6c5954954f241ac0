"""A paid call over the real stand-ins: soketi websockets, the local QStash, the Vercel router serving api/.

Minutes last two seconds here (billing.MINUTE_S), because QStash's delays are real; everything else is as deployed.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from lib import realtime
from lib.calls import billing
from localdev import qstash_server, soketi, vercel_router
from tests.calls.helpers import balance
from tests.conftest import TEST_ENV, MakeUser, SetEnv
from tests.conftest import TestUser as Person
from tests.support.pusher_ws import PusherWsClient

pytestmark = pytest.mark.skipif(
    not soketi.is_installed(), reason="soketi not installed (node or localdev/node/node_modules missing)"
)


def pusher_env(server: soketi.Soketi, *, timeout_s: str = "1.0") -> dict[str, str]:
    return {
        "PUSHER_APP_ID": server.app_id,
        "PUSHER_KEY": server.key,
        "PUSHER_SECRET": server.secret,
        "PUSHER_HOST": server.host,
        "PUSHER_PORT": str(server.port),
        "PUSHER_USE_TLS": "false",
        "PUSHER_TIMEOUT_S": timeout_s,
    }


@contextmanager
def api_server() -> Iterator[vercel_router.Running]:
    with vercel_router.running(cron_secret=TEST_ENV["CRON_SECRET"]) as api:
        yield api


class Api:
    """HTTP calls to the router as one user."""

    def __init__(self, base: str, who: Person) -> None:
        self.base = base
        self.who = who

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.base + path, headers=self.who.headers, timeout=10, trust_env=False, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, headers=self.who.headers, timeout=10, trust_env=False)

    def authorizer(self) -> Callable[[str, str], dict[str, Any]]:
        """Our own endpoint signs the subscription, as pusher-js's authorizer would ask it."""

        def sign(socket_id: str, channel: str) -> dict[str, Any]:
            r = self.post(
                "/api/v1/realtime/pusher/auth", data={"socket_id": socket_id, "channel_name": channel}
            )
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

        return sign


def minute_event(ws: PusherWsClient, channel: str, minute: int) -> Any:
    """The `call:minute_billed` of `minute` (minute 1's may or may not arrive: it is sent as we subscribe)."""
    for _ in range(minute):
        data = ws.wait_for("call:minute_billed", channel, timeout=10)
        if data["minute"] == minute:
            return data
    raise AssertionError(f"no call:minute_billed for minute {minute}")


def test_paid_call_end_to_end_until_the_fan_runs_out(
    make_user: MakeUser, set_env: SetEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    fan = make_user(balance=25)  # minute 1 on accepting (15 left), minute 2 via QStash (5 left), then short
    creator = make_user(role="creator")
    monkeypatch.setattr(billing, "MINUTE_S", 2)
    with (
        soketi.running() as pusher,
        qstash_server.running(
            token=TEST_ENV["QSTASH_TOKEN"],
            current_signing_key=TEST_ENV["QSTASH_CURRENT_SIGNING_KEY"],
            next_signing_key=TEST_ENV["QSTASH_NEXT_SIGNING_KEY"],
        ) as qstash,
        api_server() as api,
    ):
        set_env(**pusher_env(pusher), QSTASH_URL=qstash.url, PUBLIC_BASE_URL=api.url)
        as_fan, as_creator = Api(api.url, fan), Api(api.url, creator)
        fan_user, creator_user = realtime.user_channel(fan.id), realtime.user_channel(creator.id)
        with PusherWsClient(pusher.ws_url) as fan_ws, PusherWsClient(pusher.ws_url) as creator_ws:
            fan_ws.subscribe(fan_user, as_fan.authorizer())
            creator_ws.subscribe(creator_user, as_creator.authorizer())
            with pytest.raises(AssertionError):  # nobody else's channel, even with a valid token
                creator_ws.subscribe(fan_user, as_creator.authorizer())

            placed = as_fan.post(
                "/api/v1/calls/request", json={"creatorId": str(creator.id), "callType": "video"}
            )
            assert placed.status_code == 200, placed.text
            call_id, channel = placed.json()["callId"], placed.json()["channel"]
            ring = creator_ws.wait_for("call:request", creator_user, timeout=5)
            assert ring["callId"] == call_id and ring["fanId"] == str(fan.id) and ring["rate"] == 10

            accepted = as_creator.post(f"/api/v1/calls/{call_id}/accept")
            assert accepted.status_code == 200, accepted.text
            assert fan_ws.wait_for("call:accepted", fan_user, timeout=5)["callId"] == call_id
            assert fan_ws.wait_for("balance:update", fan_user, timeout=5)["balance"] == 15
            call = realtime.call_channel(channel)
            fan_ws.subscribe(call, as_fan.authorizer())
            creator_ws.subscribe(call, as_creator.authorizer())
            for who in (as_fan, as_creator):
                assert who.post(f"/api/v1/calls/{call_id}/heartbeat").json()["state"] == "active"

            # Minute 2: charged at its start by the job QStash delivers (signed) to /api/jobs/bill-call.
            assert minute_event(fan_ws, call, 2) == {
                "callId": call_id,
                "minute": 2,
                "fanBalance": 5,
            }
            assert fan_ws.wait_for("balance:update", fan_user, timeout=5) == {
                "balance": 5,
                "delta": -10,
                "reason": "call",
            }
            # Minute 3: the fan can't pay, so the call ends and both sides hear it.
            assert fan_ws.wait_for("call:insufficient_funds", call, timeout=10) == {
                "callId": call_id,
                "minuteBilled": 2,
                "fanBalance": 5,
                "tokensNeeded": 10,
            }
            assert fan_ws.wait_for("call:ended", call, timeout=5)["endReason"] == "insufficient_funds"
            assert creator_ws.wait_for("call:ended", creator_user, timeout=5)["state"] == "ended"

        status = as_creator.get(f"/api/v1/calls/{call_id}/status").json()
        assert status["state"] == "ended" and status["endReason"] == "insufficient_funds"
        assert status["totalCost"] == 20 and status["durationSeconds"] == 4
        settled = as_fan.post(f"/api/v1/calls/{call_id}/end").json()  # settles nothing twice
        assert settled["totalCost"] == 20 and settled["endReason"] == "insufficient_funds"
        assert balance(fan) == 5 and balance(creator) == 20
        deliveries = [d for d in qstash.deliveries() if d["url"].endswith("/api/jobs/bill-call")]
        assert len(deliveries) >= 2 and all(d["status"] == 200 for d in deliveries)


@contextmanager
def unreachable_pusher(kind: str) -> Iterator[int]:
    """A port where Pusher is down (nothing listens) or hanging (accepts, never answers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        if kind == "hanging":
            s.listen(16)
        yield int(s.getsockname()[1])


@pytest.mark.parametrize("kind", ["down", "hanging"])
def test_pusher_down_or_hanging_never_slows_a_request_and_the_event_arrives_after_recovery(
    make_user: MakeUser, set_env: SetEnv, kind: str
) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    with api_server() as api, unreachable_pusher(kind) as port:
        set_env(
            PUSHER_APP_ID=soketi.DEFAULT_APP_ID,
            PUSHER_KEY=soketi.DEFAULT_KEY,
            PUSHER_SECRET=soketi.DEFAULT_SECRET,
            PUSHER_HOST="127.0.0.1",
            PUSHER_PORT=str(port),
            PUSHER_TIMEOUT_S="1.0",
        )
        started = time.monotonic()
        placed = Api(api.url, fan).post(
            "/api/v1/calls/request", json={"creatorId": str(creator.id), "callType": "video"}
        )
        elapsed = time.monotonic() - started
        assert placed.status_code == 200, placed.text
        assert elapsed < 0.9, f"the request waited {elapsed:.2f}s on Pusher"
        time.sleep(1.2)  # let the after-response flush fail (refused at once, or timed out)
        with soketi.running() as pusher:
            set_env(**pusher_env(pusher))
            creator_user = realtime.user_channel(creator.id)
            with PusherWsClient(pusher.ws_url) as ws:
                ws.subscribe(creator_user, Api(api.url, creator).authorizer())
                retried = realtime.flush_pending()  # what the cleanup cron runs
                assert retried.sent >= 1
                assert (
                    ws.wait_for("call:request", creator_user, timeout=5)["callId"] == placed.json()["callId"]
                )
