"""/sessions/* over the real stand-ins: soketi websockets, the local QStash, the Vercel router serving api/.

Minutes last two seconds (billing.MINUTE_S) and a booking may be seconds ahead (slots.MIN_LEAD), because
QStash's delays are real; everything else is as deployed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lib import realtime
from lib.calls import billing, scheduling, slots
from localdev import qstash_server, soketi
from tests.calls.helpers import balance
from tests.calls.test_end_to_end import Api, api_server, minute_event, pusher_env
from tests.conftest import TEST_ENV, MakeUser, SetEnv
from tests.conftest import TestUser as Person
from tests.support.pusher_ws import PusherWsClient

pytestmark = pytest.mark.skipif(
    not soketi.is_installed(), reason="soketi not installed (node or localdev/node/node_modules missing)"
)


def local_qstash() -> Any:
    return qstash_server.running(
        token=TEST_ENV["QSTASH_TOKEN"],
        current_signing_key=TEST_ENV["QSTASH_CURRENT_SIGNING_KEY"],
        next_signing_key=TEST_ENV["QSTASH_NEXT_SIGNING_KEY"],
    )


def test_a_call_request_through_sessions_rings_bills_and_ends(
    make_user: MakeUser, set_env: SetEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    monkeypatch.setattr(billing, "MINUTE_S", 2)
    with soketi.running() as pusher, local_qstash() as qstash, api_server() as api:
        set_env(**pusher_env(pusher), QSTASH_URL=qstash.url, PUBLIC_BASE_URL=api.url)
        as_fan, as_creator = Api(api.url, fan), Api(api.url, creator)
        fan_user, creator_user = realtime.user_channel(fan.id), realtime.user_channel(creator.id)
        with PusherWsClient(pusher.ws_url) as fan_ws, PusherWsClient(pusher.ws_url) as creator_ws:
            fan_ws.subscribe(fan_user, as_fan.authorizer())
            creator_ws.subscribe(creator_user, as_creator.authorizer())

            asked = as_fan.post(  # CallConfirmationModal.js:138-143
                "/api/v1/sessions/request",
                json={
                    "creatorId": str(creator.id),
                    "creatorUsername": creator.username,
                    "serviceType": "video",
                    "price": 10,
                },
            )
            assert asked.status_code == 200, asked.text
            request_id = asked.json()["requestId"]
            ring = creator_ws.wait_for("call:request", creator_user, timeout=5)
            assert ring["callId"] == request_id and ring["fanId"] == str(fan.id) and ring["rate"] == 10
            pending = as_creator.get("/api/v1/sessions/requests?status=pending").json()["requests"]
            assert [r["id"] for r in pending] == [request_id] and pending[0]["fan_username"] == fan.username

            accepted = as_creator.post(
                f"/api/v1/sessions/requests/{request_id}/accept",
                json={"scheduled_date": None, "scheduled_time": None},
            )
            assert accepted.status_code == 200, accepted.text
            channel = accepted.json()["call"]["channel"]
            assert fan_ws.wait_for("call:accepted", fan_user, timeout=5)["callId"] == request_id
            assert fan_ws.wait_for("balance:update", fan_user, timeout=5)["balance"] == 90
            call = realtime.call_channel(channel)
            fan_ws.subscribe(call, as_fan.authorizer())
            for who in (as_fan, as_creator):
                assert who.post(f"/api/v1/calls/{request_id}/heartbeat").json()["state"] == "active"
            # Minute 2: the same QStash job as any call, to /api/jobs/bill-call.
            assert minute_event(fan_ws, call, 2)["fanBalance"] == 80

            ended = as_fan.post(f"/api/v1/sessions/requests/{request_id}/cancel", json={"reason": "bye"})
            assert ended.status_code == 200 and ended.json()["request"]["status"] == "completed"
            assert creator_ws.wait_for("call:ended", creator_user, timeout=5)["state"] == "ended"
        cost = 100 - balance(fan)
        assert cost in (20, 30) and balance(creator) == cost  # minute 3 if the hang-up came after it started
        listed = as_creator.get("/api/v1/sessions/requests?status=completed").json()["requests"]
        assert [r["id"] for r in listed] == [request_id]


def test_a_booked_call_rings_at_its_time_and_a_rescheduled_one_at_the_new_time_only(
    make_user: MakeUser, set_env: SetEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    fan_a, creator_a = make_user(balance=100), make_user(role="creator")
    fan_b, creator_b = make_user(balance=100), make_user(role="creator")
    monkeypatch.setattr(slots, "MIN_LEAD", timedelta(0))
    with soketi.running() as pusher, local_qstash() as qstash, api_server() as api:
        set_env(**pusher_env(pusher), QSTASH_URL=qstash.url, PUBLIC_BASE_URL=api.url)
        users = {p.id: Api(api.url, p) for p in (fan_a, creator_a, fan_b, creator_b)}
        sockets = {uid: PusherWsClient(pusher.ws_url) for uid in users}
        try:
            for uid, ws in sockets.items():
                ws.subscribe(realtime.user_channel(uid), users[uid].authorizer())
            start = datetime.now(UTC)
            at_a, first_b, at_b = (start + timedelta(seconds=s) for s in (4, 3, 8))

            def book(fan: Person, creator: Person, at: datetime) -> str:
                r = users[fan.id].post(
                    "/api/v1/sessions/request",
                    json={
                        "creatorId": str(creator.id),
                        "serviceType": "voice",
                        "scheduled_at": at.isoformat(),
                    },
                )
                assert r.status_code == 200 and r.json()["scheduled"] is True, r.text
                request_id: str = r.json()["requestId"]
                accepted = users[creator.id].post(f"/api/v1/sessions/requests/{request_id}/accept")
                assert accepted.status_code == 200 and accepted.json()["call"] is None
                return request_id

            booked_a, booked_b = book(fan_a, creator_a, at_a), book(fan_b, creator_b, first_b)
            moved = users[creator_b.id].post(
                f"/api/v1/sessions/requests/{booked_b}/reschedule",
                json={"new_scheduled_at": at_b.isoformat(), "message": "a bit later"},
            )
            assert moved.status_code == 200 and moved.json()["request"]["status"] == "accepted"

            ring_a = sockets[creator_a.id].wait_for(
                "call:request", realtime.user_channel(creator_a.id), timeout=10
            )
            rang_a = time.time()
            due_a = sockets[fan_a.id].wait_for("session:due", realtime.user_channel(fan_a.id), timeout=5)
            assert due_a["requestId"] == booked_a and due_a["callId"] == ring_a["callId"]
            assert rang_a >= at_a.timestamp() - 0.5

            # B's first message arrives at its old time and does nothing; B rings at the new time.
            sockets[creator_b.id].assert_no_event(
                "call:request",
                realtime.user_channel(creator_b.id),
                within=max(0.0, at_b.timestamp() - time.time() - 0.5),
            )
            ring_b = sockets[creator_b.id].wait_for(
                "call:request", realtime.user_channel(creator_b.id), timeout=10
            )
            assert time.time() >= at_b.timestamp() - 0.5
            assert (
                sockets[fan_b.id].wait_for("session:due", realtime.user_channel(fan_b.id), timeout=5)[
                    "callId"
                ]
                == (ring_b["callId"])
            )
        finally:
            for ws in sockets.values():
                ws.close()
        rings = [d for d in qstash.deliveries() if d["url"].endswith(scheduling.RING_PATH)]
        outcomes = sorted(d["responseBody"].split('"status":"')[1].split('"')[0] for d in rings)
        assert outcomes == ["rung", "rung", "stale"], rings
        # Answering it is answering the call: minute 1 at B's voice rate.
        answered = users[creator_b.id].post(f"/api/v1/sessions/requests/{booked_b}/accept")
        assert answered.status_code == 200 and answered.json()["call"]["callId"] == ring_b["callId"]
        assert balance(fan_b) == 94
